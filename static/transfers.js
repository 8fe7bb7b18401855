// Transfers: a new P2P transfer (one idempotency key per submission), the list with
// filters, one transfer with its postings, resolution of IN_DOUBT transfers and the
// checker's decision on cash movements that wait for approval.

import * as api from "/static/api.js";
import { recentTransfers } from "/static/dashboard.js";
import {
  h, field, input, select, form, section, table, money, badge, when, link, more, can, notify,
  idempotencyKey, postOnce,
} from "/static/ui.js";

const STATUSES = ["", "PENDING", "COMPLETED", "FAILED", "IN_DOUBT", "AWAITING_APPROVAL", "REJECTED"];
const ROUTES = ["", "ON_US", "SDK", "CASH", "ADJUSTMENT"];

/** `#/transfers` or `#/transfers/{id}`. */
export async function render(view, ctx) {
  if (ctx.params[0]) {
    return renderTransfer(view, ctx, ctx.params[0]);
  }
  view.append(h("h1", {}, "Transfers"));
  if (can(ctx.user, "maker")) {
    view.append(section("New P2P transfer", p2pForm()));
  }
  const results = h("div", { class: "results" });
  const filters = form(
    { id: "transfer-filters", class: "inline", role: "search" },
    [
      field("MSISDN", input("msisdn", { inputmode: "tel" })),
      field("Status", select("status", STATUSES)),
      field("Route", select("route", ROUTES)),
      field("Since", input("since", { type: "datetime-local" })),
      field("Until", input("until", { type: "datetime-local" })),
    ],
    "Filter",
    async (_, v) => {
      results.replaceChildren();
      await loadTransfers(results, { ...v, since: isoTime(v.since), until: isoTime(v.until) });
    },
  );
  view.append(section("All transfers", filters, results));
  await loadTransfers(results, {});
}

/** A `datetime-local` value as RFC 3339 in UTC. */
function isoTime(local) {
  return local ? new Date(local).toISOString().replace(/\.\d{3}Z$/, "Z") : "";
}

async function loadTransfers(container, query, cursor) {
  const page = await api.get("/api/v1/transfers/", { ...query, limit: 50, cursor });
  container.append(recentTransfers(page.items), more(page.next_cursor, (n) => loadTransfers(container, query, n)));
}

function p2pForm() {
  const result = h("div", { id: "p2p-result", role: "status" });
  let key = null;
  const f = form(
    { id: "p2p-form", class: "inline" },
    [
      field("From (sender MSISDN)", input("sender_msisdn", { inputmode: "tel", autocomplete: "off", required: true })),
      field("To (receiver MSISDN)", input("receiver_msisdn", { inputmode: "tel", autocomplete: "off", required: true })),
      field("Amount", input("amount", { inputmode: "decimal", autocomplete: "off", required: true })),
      field("Currency", input("currency", { maxlength: 3, class: "short", autocapitalize: "characters" }), "optional"),
      field("Note", input("note", { maxlength: 128, autocomplete: "off" })),
    ],
    "Send",
    async (el, v) => {
      result.replaceChildren();
      const body = { sender_msisdn: v.sender_msisdn.trim(), receiver_msisdn: v.receiver_msisdn.trim(), amount: v.amount.trim() };
      if (v.currency.trim()) {
        body.currency = v.currency.trim().toUpperCase();
      }
      if (v.note.trim()) {
        body.note = v.note.trim();
      }
      const t = await postOnce(key, "/api/v1/transfers/", body);
      el.reset();
      result.append(
        h("p", {}, `Transfer of ${money(t.amount, t.currency)} to ${t.receiver_msisdn}: `, badge(t.status), " ",
          link(`#/transfers/${t.transfer_id}`, t.transfer_id)),
        t.error_message ? h("p", { class: "error" }, `${t.error_message} (${t.error_code})`) : "",
      );
      notify(`Transfer ${t.status}.`);
    },
  );
  key = idempotencyKey(f);
  f.append(result);
  return f;
}

async function renderTransfer(view, ctx, id) {
  const t = await api.get(`/api/v1/transfers/${encodeURIComponent(id)}/`);
  view.append(h("h1", {}, "Transfer"));
  const facts = [
    ["Transfer id", t.transfer_id],
    ["Status", badge(t.status)],
    ["Route", t.route],
    ["From", link(`#/accounts/${t.sender_msisdn}`, t.sender_msisdn)],
    ["To", t.route === "SDK" ? t.receiver_msisdn : link(`#/accounts/${t.receiver_msisdn}`, t.receiver_msisdn)],
    ["Amount", money(t.amount, t.currency)],
    ["Note", t.note || "—"],
    ["Reference", t.reference || "—"],
    ["Error", t.error_code ? `${t.error_message || ""} (${t.error_code})${t.retryable ? ", retryable" : ""}` : "—"],
    ["SDK transfer id", t.sdk_transfer_id || "—"],
    ["SDK phase", t.sdk_phase || "—"],
    ["Bulk job", t.bulk_job_id ? link(`#/bulk/${t.bulk_job_id}`, `line ${t.bulk_line}`) : "—"],
    ["Created", `${when(t.created_at)} by ${t.created_by || "—"}`],
    ["Updated", when(t.updated_at)],
    ["Approved by", t.approved_by || "—"],
    ["Resolution", t.resolution ? `${t.resolution.reason} (by ${t.resolution.by}, ${when(t.resolution.at)})` : "—"],
  ];
  view.append(
    section("Record", h("dl", { class: "facts", id: "transfer-facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
  );
  const reload = () => {
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  };
  if (t.status === "IN_DOUBT" && can(ctx.user, "checker")) {
    view.append(section("Resolve IN_DOUBT", resolveForm(t, reload)));
  }
  if (t.status === "AWAITING_APPROVAL" && can(ctx.user, "checker")) {
    view.append(section("Decide", decideForms(t, reload)));
  }
  view.append(
    section(
      "Postings",
      table(
        "Postings",
        [
          ["Kind", (p) => p.kind],
          ["From", (p) => `${p.from.account} (${p.from.bucket})`],
          ["To", (p) => `${p.to.account} (${p.to.bucket})`],
          ["Amount", (p) => money(p.amount, t.currency)],
        ],
        t.postings || [],
        "No postings.",
      ),
    ),
  );
}

function resolveForm(t, reload) {
  const outcome = select("how", [
    ["hub", "Ask the hub about an SDK transfer id"],
    ["COMPLETED", "Record as COMPLETED"],
    ["FAILED", "Record as FAILED"],
  ]);
  const sdkId = input("sdk_transfer_id", { value: t.sdk_transfer_id || "", autocomplete: "off" });
  return form(
    { id: "resolve-form" },
    [field("Resolution", outcome), field("SDK transfer id", sdkId, "used when asking the hub"), field("Reason", input("reason", { required: true }))],
    "Resolve",
    async (_, v) => {
      const body = v.how === "hub" ? { sdk_transfer_id: v.sdk_transfer_id.trim(), reason: v.reason } : { outcome: v.how, reason: v.reason };
      await api.post(`/api/v1/transfers/${t.transfer_id}/resolve/`, body);
      notify("Transfer resolved.");
      reload();
    },
  );
}

function decideForms(t, reload) {
  const approve = form({ id: "cash-approve" }, [], "Approve", async () => {
    await api.post(`/api/v1/transfers/${t.transfer_id}/approve/`);
    reload();
  });
  const reject = form(
    { id: "cash-reject" },
    [field("Reason for rejecting", input("reason", { required: true }))],
    "Reject",
    async (_, v) => {
      await api.post(`/api/v1/transfers/${t.transfer_id}/reject/`, { reason: v.reason });
      reload();
    },
  );
  return h("div", { class: "grid" }, approve, reject);
}
