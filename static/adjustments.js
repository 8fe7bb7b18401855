// Adjustments: a maker requests a correction against cash or settlement; another
// checker approves (it is posted) or rejects it.

import * as api from "/static/api.js";
import {
  h, field, input, select, form, section, table, money, badge, when, link, more, can, notify,
  errorBox, showError, clearError, idempotencyKey, postOnce,
} from "/static/ui.js";

/** `#/adjustments`. */
export async function render(view, ctx) {
  view.append(h("h1", {}, "Adjustments"));
  const results = h("div", { class: "results" });
  const reload = async (status) => {
    results.replaceChildren();
    await loadAdjustments(results, ctx, status);
  };
  if (can(ctx.user, "maker")) {
    view.append(section("Request an adjustment", requestForm(() => reload(""))));
  }
  const filters = form(
    { id: "adjustment-filters", class: "inline", role: "search" },
    [field("Status", select("status", ["", "AWAITING_APPROVAL", "POSTED", "REJECTED"]))],
    "Filter",
    (_, v) => reload(v.status),
  );
  view.append(section("Adjustments", filters, results));
  await loadAdjustments(results, ctx, "");
}

function requestForm(done) {
  let key = null;
  const f = form(
    { id: "adjustment-form", class: "inline" },
    [
      field("Wallet MSISDN", input("msisdn", { inputmode: "tel", required: true, autocomplete: "off" })),
      field("Counter account", select("counter", [["CASH", "Cash"], ["SETTLEMENT", "Settlement"]])),
      field("Direction", select("direction", [["CREDIT", "Credit the wallet"], ["DEBIT", "Debit the wallet"]])),
      field("Amount", input("amount", { inputmode: "decimal", required: true, autocomplete: "off" })),
      field("Reason", input("reason", { required: true, autocomplete: "off" })),
      field("Corrects transfer", input("refers_to", { autocomplete: "off" }), "optional transfer id"),
    ],
    "Request",
    async (el, v) => {
      const body = { msisdn: v.msisdn.trim(), counter: v.counter, direction: v.direction, amount: v.amount.trim(), reason: v.reason };
      if (v.refers_to.trim()) {
        body.refers_to = v.refers_to.trim();
      }
      const a = await postOnce(key, "/api/v1/adjustments/", body);
      el.reset();
      notify(`Adjustment requested: ${a.status}.`);
      await done();
    },
  );
  key = idempotencyKey(f);
  return f;
}

async function loadAdjustments(container, ctx, status, cursor) {
  const page = await api.get("/api/v1/adjustments/", { status, limit: 50, cursor });
  container.append(
    table(
      "Adjustments",
      [
        ["When", (a) => when(a.created_at)],
        ["Wallet", (a) => link(`#/accounts/${a.msisdn}`, a.msisdn)],
        ["Change", (a) => `${a.direction} ${money(a.amount, a.currency)} against ${a.counter}`],
        ["Reason", (a) => a.reason],
        ["By", (a) => a.created_by],
        ["Status", (a) => [badge(a.status), a.decided_by ? ` by ${a.decided_by}` : ""]],
        ["", (a) => decision(a, ctx, () => {
          container.replaceChildren();
          return loadAdjustments(container, ctx, status);
        })],
      ],
      page.items,
      "No adjustments.",
    ),
    more(page.next_cursor, (n) => loadAdjustments(container, ctx, status, n)),
  );
}

function decision(a, ctx, reload) {
  if (a.status !== "AWAITING_APPROVAL" || !can(ctx.user, "checker") || a.created_by === ctx.user.username) {
    return a.transfer_id ? link(`#/transfers/${a.transfer_id}`, "transfer") : "";
  }
  const error = errorBox();
  const reason = input("reason", { "aria-label": `Reason to reject adjustment ${a.adjustment_id.slice(0, 8)}`, placeholder: "reason to reject" });
  const act = async (what) => {
    clearError(error);
    try {
      if (what === "approve") {
        await api.post(`/api/v1/adjustments/${a.adjustment_id}/approve/`);
      } else {
        await api.post(`/api/v1/adjustments/${a.adjustment_id}/reject/`, { reason: reason.value });
      }
      await reload();
    } catch (e) {
      showError(error, e);
    }
  };
  return h(
    "div",
    { class: "row-actions" },
    h("button", { type: "button", onclick: () => act("approve") }, "Approve"),
    reason,
    h("button", { type: "button", class: "secondary", onclick: () => act("reject") }, "Reject"),
    error,
  );
}
