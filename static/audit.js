// The audit log (admin only): entries filtered by actor and action, and a check of
// the HMAC chain.

import * as api from "/static/api.js";
import { h, field, input, form, section, table, when, more, errorBox, showError, clearError } from "/static/ui.js";

/** `#/audit`. */
export async function render(view) {
  view.append(h("h1", {}, "Audit log"));
  const verdict = h("p", { id: "audit-verdict", role: "status" });
  const error = errorBox();
  const verify = h("button", { type: "button", id: "audit-verify" }, "Verify the chain");
  verify.addEventListener("click", async () => {
    clearError(error);
    verdict.textContent = "Verifying…";
    try {
      const r = await api.get("/api/v1/audit/verify/");
      verdict.className = r.ok ? "ok" : "error";
      verdict.textContent = r.ok
        ? `The chain is intact: ${r.entries} entries verified.`
        : `The chain is broken at entry ${r.first_bad.seq}: ${r.first_bad.reason} (${r.entries} entries).`;
    } catch (e) {
      verdict.textContent = "";
      showError(error, e);
    }
  });
  const results = h("div", { class: "results" });
  const filters = form(
    { id: "audit-filters", class: "inline", role: "search" },
    [field("Actor", input("actor", { autocomplete: "off" })), field("Action", input("action", { autocomplete: "off" }))],
    "Filter",
    async (_, v) => {
      results.replaceChildren();
      await loadEntries(results, { actor: v.actor, action: v.action.trim().toUpperCase() });
    },
  );
  view.append(section("Verification", verify, verdict, error), section("Entries", filters, results));
  await loadEntries(results, {});
}

async function loadEntries(container, query, cursor) {
  const page = await api.get("/api/v1/audit/", { ...query, limit: 100, cursor });
  container.append(
    table(
      "Audit entries",
      [
        ["#", (e) => String(e.seq)],
        ["When", (e) => when(e.at)],
        ["Actor", (e) => e.actor],
        ["Action", (e) => e.action],
        ["Target", (e) => e.target || ""],
        ["Details", (e) => (e.details ? h("code", {}, JSON.stringify(e.details)) : "")],
      ],
      page.items,
      "No entries.",
    ),
    more(page.next_cursor, (n) => loadEntries(container, query, n)),
  );
}
