// Dashboard: warnings, customer balances per currency, system accounts, recent
// transfers and the jobs that are not finished.

import * as api from "/static/api.js";
import { h, section, table, money, addDecimals, badge, when, link, describe } from "/static/ui.js";

const OPEN_JOBS = ["PENDING", "AWAITING_APPROVAL", "PROCESSING", "PAUSED"];

/** Renders the dashboard. */
export async function render(view) {
  view.append(h("h1", {}, "Dashboard"));
  const [ready, system, recent, jobs, adjustments, cash, config] = await Promise.allSettled([
    api.get("/readyz").catch((e) => (e.body ? e.body : Promise.reject(e))),
    api.get("/api/v1/system-accounts/"),
    api.get("/api/v1/transfers/", { limit: 10 }),
    api.get("/api/v1/bulk/jobs/", { limit: 50 }),
    api.get("/api/v1/adjustments/", { status: "AWAITING_APPROVAL", limit: 50 }),
    api.get("/api/v1/transfers/", { status: "AWAITING_APPROVAL", limit: 50 }),
    api.get("/api/v1/config-warnings/"),
  ]);
  const openJobs = jobs.status === "fulfilled" ? jobs.value.items.filter((j) => OPEN_JOBS.includes(j.status)) : [];
  view.append(
    warningsSection(ready, config, openJobs, adjustments, cash),
    h(
      "div",
      { class: "grid" },
      settled(system, "Balances per currency", balances),
      settled(system, "System accounts", systemAccounts),
    ),
    settled(recent, "Recent transfers", (page) => recentTransfers(page.items)),
    settled(jobs, "Jobs in progress", () => jobsTable(openJobs)),
  );
}

function settled(result, title, build) {
  if (result.status === "rejected") {
    return section(title, h("p", { class: "error", role: "alert" }, describe(result.reason)));
  }
  return section(title, build(result.value));
}

function warningsSection(ready, config, openJobs, adjustments, cash) {
  const list = [];
  if (config.status === "fulfilled") {
    list.push(...config.value.warnings.map((w) => `Configuration: ${w}.`));
  }
  if (ready.status === "fulfilled") {
    const r = ready.value;
    if (!r.ready) {
      list.push("The service is not ready: start-up recovery is running or an invariant is violated.");
    }
    for (const v of (r.invariants && r.invariants.violations) || []) {
      list.push(`Ledger invariant violated: ${v}`);
    }
    if (r.sdk && !r.sdk.ok && r.sdk.last_probe_at) {
      list.push(`The Mojaloop SDK does not answer (${r.sdk.error || "no reply"}); on-us transfers and reads still work.`);
    }
    if (r.in_doubt_scheduled > 0) {
      list.push(`${r.in_doubt_scheduled} transfer(s) are IN_DOUBT and being reconciled.`);
    }
  }
  for (const j of openJobs) {
    if (j.status === "PAUSED") {
      list.push(`Job ${j.file_name} is paused${j.reason ? `: ${j.reason}` : ""}.`);
    }
    if (j.status === "PROCESSING" && !j.approved_by) {
      list.push(`Job ${j.file_name} started without a checker: bulk approval is turned off (SYSGP_BULK_APPROVAL=false).`);
    }
  }
  const waiting = openJobs.filter((j) => j.status === "AWAITING_APPROVAL").length;
  if (waiting > 0) {
    list.push(`${waiting} bulk job(s) wait for a checker's approval.`);
  }
  if (adjustments.status === "fulfilled" && adjustments.value.items.length > 0) {
    list.push(`${adjustments.value.items.length} adjustment(s) wait for a checker.`);
  }
  if (cash.status === "fulfilled" && cash.value.items.length > 0) {
    list.push(`${cash.value.items.length} deposit(s) or withdrawal(s) wait for a checker.`);
  }
  const body = list.length
    ? h("ul", { class: "warnings" }, ...list.map((w) => h("li", {}, w)))
    : h("p", { class: "ok" }, "No warnings.");
  return section("Warnings", body);
}

/** Customer money per currency: every currency sums to zero, so the wallets hold
 *  minus what the cash and settlement accounts hold. */
function balances(page) {
  const byCurrency = new Map();
  for (const a of page.items) {
    const row = byCurrency.get(a.currency) || { currency: a.currency, cash: "0", settlement: "0" };
    if (a.kind === "CASH") {
      row.cash = a.balance;
    } else if (a.kind === "SETTLEMENT") {
      row.settlement = a.balance;
    }
    byCurrency.set(a.currency, row);
  }
  const neg = (a) => (a === "0" ? a : a.startsWith("-") ? a.slice(1) : `-${a}`);
  const rows = [...byCurrency.values()].map((r) => ({ ...r, wallets: neg(addDecimals(r.cash, r.settlement)) }));
  return table(
    "Customer balances per currency",
    [
      ["Currency", (r) => r.currency],
      ["In wallets", (r) => money(r.wallets)],
      ["Cash in, net", (r) => money(addDecimals("0", neg(r.cash)))],
      ["Paid out through the SDK", (r) => money(addDecimals("0", neg(r.settlement)))],
    ],
    rows,
    "No money has moved yet.",
  );
}

function systemAccounts(page) {
  return table(
    "System accounts",
    [
      ["Account", (a) => a.account],
      ["Balance", (a) => money(a.balance, a.currency)],
    ],
    page.items,
    "No system accounts yet.",
  );
}

/** A transfers table (also used by the accounts and transfers screens). */
export function recentTransfers(items) {
  return table(
    "Transfers",
    [
      ["When", (t) => when(t.created_at)],
      ["Transfer", (t) => link(`#/transfers/${t.transfer_id}`, t.transfer_id.slice(0, 8))],
      ["From", (t) => t.sender_msisdn],
      ["To", (t) => t.receiver_msisdn],
      ["Amount", (t) => money(t.amount, t.currency)],
      ["Route", (t) => t.route],
      ["Status", (t) => badge(t.status)],
    ],
    items,
    "No transfers yet.",
  );
}

function jobsTable(items) {
  return table(
    "Jobs in progress",
    [
      ["File", (j) => link(`#/bulk/${j.job_id}`, j.file_name)],
      ["Status", (j) => badge(j.status)],
      ["Progress", (j) => `${j.progress} %`],
      ["Total", (j) => money(j.total_amount, j.currency)],
    ],
    items,
    "No job is in progress.",
  );
}
