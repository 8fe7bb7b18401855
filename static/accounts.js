// Accounts (wallets): search, create; one wallet with deposit, withdraw, freeze and
// unfreeze, and its statement.

import * as api from "/static/api.js";
import { recentTransfers } from "/static/dashboard.js";
import {
  h, field, input, select, form, section, table, money, badge, when, link, more, can, notify,
  idempotencyKey, postOnce,
} from "/static/ui.js";

/** `#/accounts` (search and create) or `#/accounts/{msisdn}` (one wallet). */
export async function render(view, ctx) {
  if (ctx.params[0]) {
    return renderWallet(view, ctx, ctx.params[0]);
  }
  view.append(h("h1", {}, "Accounts"));
  if (can(ctx.user, "maker")) {
    view.append(section("New wallet", createForm()));
  }
  const results = h("div", { class: "results" });
  const search = form(
    { id: "account-search", class: "inline", role: "search" },
    [
      field("MSISDN or name", input("q", { type: "search" })),
      field("Currency", input("currency", { maxlength: 3, class: "short", autocapitalize: "characters" })),
      field("Status", select("status", ["", "ACTIVE", "FROZEN"])),
    ],
    "Search",
    async (_, v) => {
      results.replaceChildren();
      await loadAccounts(results, { q: v.q, currency: v.currency.toUpperCase(), status: v.status });
    },
  );
  view.append(section("Wallets", search, results));
  await loadAccounts(results, {});
}

async function loadAccounts(container, query, cursor) {
  const page = await api.get("/api/v1/accounts/", { ...query, limit: 50, cursor });
  container.append(
    table(
      "Wallets",
      [
        ["MSISDN", (a) => link(`#/accounts/${a.msisdn}`, a.msisdn)],
        ["Name", (a) => a.display_name || ""],
        ["Available", (a) => money(a.available, a.currency)],
        ["Reserved", (a) => money(a.reserved, a.currency)],
        ["Status", (a) => badge(a.status)],
      ],
      page.items,
      "No wallet matches.",
    ),
    more(page.next_cursor, (next) => loadAccounts(container, query, next)),
  );
}

function createForm() {
  const created = h("p", { class: "ok", role: "status" });
  const f = form(
    { id: "account-create", class: "inline" },
    [
      field("MSISDN", input("msisdn", { inputmode: "tel", autocomplete: "off", required: true })),
      field("Currency", input("currency", { maxlength: 3, class: "short", required: true, autocapitalize: "characters" })),
      field("Display name", input("display_name", { autocomplete: "off" })),
    ],
    "Create wallet",
    async (el, v) => {
      const body = { msisdn: v.msisdn, currency: v.currency.trim().toUpperCase() };
      if (v.display_name.trim()) {
        body.display_name = v.display_name.trim();
      }
      const a = await api.post("/api/v1/accounts/", body);
      el.reset();
      created.replaceChildren("Created ", link(`#/accounts/${a.msisdn}`, a.msisdn), ` (${a.currency}).`);
      notify(`Wallet ${a.msisdn} created.`);
    },
  );
  f.append(created);
  return f;
}

async function renderWallet(view, ctx, msisdn) {
  const path = `/api/v1/accounts/${encodeURIComponent(msisdn)}/`;
  const a = await api.get(path);
  view.append(h("h1", {}, `Wallet ${a.msisdn}`));
  const summary = h("dl", { class: "facts", id: "wallet-summary" });
  const show = (acc) => {
    summary.replaceChildren(
      ...fact("Name", acc.display_name || "—"),
      ...fact("Status", badge(acc.status), acc.status_reason ? ` ${acc.status_reason}` : ""),
      ...fact("Balance", money(acc.balance, acc.currency)),
      ...fact("Available", money(acc.available, acc.currency)),
      ...fact("Reserved", money(acc.reserved, acc.currency)),
      ...fact("Created", when(acc.created_at)),
    );
  };
  show(a);
  view.append(section("Summary", summary));
  const statement = h("div", { id: "statement" });
  const refresh = async () => {
    show(await api.get(path));
    statement.replaceChildren();
    await loadStatement(statement, msisdn);
  };
  const actions = [];
  if (can(ctx.user, "maker")) {
    actions.push(cashForm(msisdn, "deposit", "Deposit", refresh), cashForm(msisdn, "withdraw", "Withdraw", refresh));
  }
  if (can(ctx.user, "checker")) {
    actions.push(freezeForm(msisdn, a.status === "FROZEN", refresh));
  }
  if (actions.length) {
    view.append(h("div", { class: "grid" }, ...actions));
  }
  view.append(section("Statement", statement));
  await loadStatement(statement, msisdn);
}

function fact(term, ...value) {
  return [h("dt", {}, term), h("dd", {}, ...value)];
}

async function loadStatement(container, msisdn, cursor) {
  const page = await api.get(`/api/v1/accounts/${encodeURIComponent(msisdn)}/transfers/`, { limit: 50, cursor });
  container.append(recentTransfers(page.items), more(page.next_cursor, (n) => loadStatement(container, msisdn, n)));
}

function cashForm(msisdn, action, title, refresh) {
  const result = h("p", { class: "ok", role: "status" });
  let key = null;
  const f = form(
    { id: `${action}-form` },
    [
      field("Amount", input("amount", { inputmode: "decimal", autocomplete: "off", required: true })),
      field("Reference", input("reference", { maxlength: 64, autocomplete: "off" }), "optional, unique per wallet"),
      field("Note", input("note", { maxlength: 128, autocomplete: "off" })),
    ],
    title,
    async (el, v) => {
      const body = { amount: v.amount.trim() };
      if (v.reference.trim()) {
        body.reference = v.reference.trim();
      }
      if (v.note.trim()) {
        body.note = v.note.trim();
      }
      const t = await postOnce(key, `/api/v1/accounts/${encodeURIComponent(msisdn)}/${action}/`, body);
      el.reset();
      result.replaceChildren(`${title} of ${money(t.amount, t.currency)}: `, badge(t.status), " ",
        link(`#/transfers/${t.transfer_id}`, "details"));
      await refresh();
    },
  );
  key = idempotencyKey(f);
  f.append(result);
  return section(title, f);
}

function freezeForm(msisdn, frozen, refresh) {
  const action = frozen ? "unfreeze" : "freeze";
  const title = frozen ? "Unfreeze" : "Freeze";
  const f = form(
    { id: "freeze-form" },
    [field("Reason", input("reason", { required: true, autocomplete: "off" }))],
    title,
    async (el, v) => {
      await api.post(`/api/v1/accounts/${encodeURIComponent(msisdn)}/${action}/`, { reason: v.reason });
      const box = el.closest("section");
      box.replaceWith(freezeForm(msisdn, !frozen, refresh));
      await refresh();
    },
  );
  return section(`${title} the wallet`, f);
}
