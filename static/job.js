// One bulk job: a live progress bar with counts, rate and ETA fed by the server-sent
// events (read with fetch(), so the token goes in the header), the operator actions
// (approve with duplicate acknowledgement, reject, pause, resume, cancel, retry), the
// validation report by line and field, the items with a status filter, and the
// results.csv / errors.csv downloads.

import * as api from "/static/api.js";
import {
  h, field, input, select, form, section, table, money, badge, when, link, more, can, notify,
  errorBox, showError, clearError, describe,
} from "/static/ui.js";

const ITEM_STATUSES = ["PENDING", "PROCESSING", "COMPLETED", "FAILED", "IN_DOUBT", "CANCELLED", "INVALID"];
/** While a job is in these states, its events stream keeps coming. */
const LIVE = ["PENDING", "PROCESSING"];
const FINAL_ITEMS = ["COMPLETED", "FAILED", "CANCELLED"];

/** Renders `#/bulk/{id}`. */
export async function render(view, ctx, id) {
  const base = `/api/v1/bulk/jobs/${encodeURIComponent(id)}`;
  const first = await api.get(`${base}/`);
  const screen = {
    ctx,
    base,
    job: first,
    title: h("h1", {}, `Job ${first.file_name}`),
    summary: h("dl", { class: "facts", id: "job-summary" }),
    progress: h("progress", { id: "job-progress", max: 100, value: 0, "aria-labelledby": "job-progress-text" }),
    progressText: h("p", { id: "job-progress-text", class: "progress-text" }),
    counts: h("div", { id: "job-counts" }),
    actions: h("div", { id: "job-actions", class: "actions" }),
    actionsStatus: null,
    report: h("div", { id: "job-report" }),
    items: h("div", { id: "job-items" }),
    streaming: false,
  };
  view.append(
    screen.title,
    section("Progress", screen.progress, screen.progressText, screen.counts),
    section("Actions", screen.actions),
    section("Job", screen.summary),
    section("Downloads", downloads(screen)),
    section("Validation report", screen.report),
    section("Items", itemFilter(screen), screen.items),
  );
  update(screen, first);
  await Promise.all([loadReport(screen), loadItems(screen, "")]);
  follow(screen);
}

/** Shows a new state of the job; re-renders the actions only when the status changed. */
function update(screen, j) {
  const before = screen.job.status;
  screen.job = j;
  const final = FINAL_ITEMS.reduce((n, s) => n + (j.counts[s] || 0), 0);
  screen.progress.value = j.progress;
  const parts = [`${j.progress} %`, `${final} of ${j.total_count} items final`];
  if (j.status === "PROCESSING") {
    parts.push(`${j.rate_per_sec} items/s`);
    parts.push(j.eta_seconds === null || j.eta_seconds === undefined ? "ETA unknown" : `ETA ${duration(j.eta_seconds)}`);
  }
  screen.progressText.textContent = parts.join(" · ");
  screen.counts.replaceChildren(countsTable(j));
  screen.summary.replaceChildren(...summary(j));
  if (screen.actionsStatus !== j.status) {
    screen.actionsStatus = j.status;
    screen.actions.replaceChildren(...actions(screen));
  }
  if (before !== j.status && !LIVE.includes(j.status)) {
    // The job settled: the report and the items have changed.
    loadReport(screen).catch(() => {});
    loadItems(screen, screen.itemStatus || "").catch(() => {});
  }
}

function duration(seconds) {
  if (seconds < 60) {
    return `${seconds} s`;
  }
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${seconds % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function countsTable(j) {
  return table(
    "Items by status",
    [
      ["Status", (s) => badge(s)],
      ["Items", (s) => String(j.counts[s] || 0)],
      ["Amount", (s) => money(j.amounts[s], j.currency)],
    ],
    ITEM_STATUSES,
  );
}

function summary(j) {
  const facts = [
    ["Status", [badge(j.status), j.reason ? ` ${j.reason}` : ""]],
    ["Paying wallet", link(`#/accounts/${j.source_msisdn}`, j.source_msisdn)],
    ["Items", `${j.total_count} valid of ${j.rows} lines${j.invalid_rows ? `, ${j.invalid_rows} invalid` : ""}`],
    ["Total", money(j.total_amount, j.currency)],
    ["Still reserved", money(j.reserved_remaining, j.currency)],
    ["Uploaded", `${when(j.created_at)} by ${j.created_by}`],
    ["Approved by", j.approved_by || "—"],
    ["Started", when(j.started_at)],
    ["Finished", when(j.finished_at)],
    ["Note", j.note || "—"],
  ];
  const out = facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]);
  if (j.warnings && j.warnings.length) {
    out.push(h("dt", {}, "Warnings"), h("dd", {}, h("ul", { class: "warnings" }, ...j.warnings.map((w) => h("li", {}, w)))));
  }
  return out;
}

/** Reads the events stream while the job is live; reads the job once more at the end. */
async function follow(screen) {
  const { ctx, base } = screen;
  if (screen.streaming || !LIVE.includes(screen.job.status) || ctx.signal.aborted) {
    return;
  }
  screen.streaming = true;
  try {
    await api.streamEvents(`${base}/events`, (name, data) => name === "progress" && update(screen, data), ctx.signal);
    update(screen, await api.get(`${base}/`));
  } catch (e) {
    if (e.name !== "AbortError") {
      notify(describe(e));
    }
  } finally {
    screen.streaming = false;
  }
}

/** The buttons this role may use in this status (others are not shown). */
function actions(screen) {
  const { ctx, job: j } = screen;
  const user = ctx.user;
  const error = errorBox();
  const out = [];
  const run = (what, body) => async () => {
    clearError(error);
    try {
      const next = await api.post(`${screen.base}/${what}/`, body);
      notify(`Job ${next.status}.`);
      update(screen, next);
      follow(screen);
    } catch (e) {
      if (e.code === "DUPLICATES_NOT_ACKNOWLEDGED") {
        error.replaceWith(acknowledge(screen, what, e));
        return;
      }
      showError(error, e);
    }
  };
  const button = (id, label, what, cls) => h("button", { type: "button", id, class: cls, onclick: run(what) }, label);
  const own = j.created_by === user.username;
  if (j.status === "AWAITING_APPROVAL" && can(user, "checker") && !own) {
    out.push(button("job-approve", "Approve and pay", "approve"));
    out.push(rejectForm(screen));
  }
  if (j.status === "PROCESSING" && can(user, "operator")) {
    out.push(button("job-pause", "Pause", "pause", "secondary"));
  }
  if (j.status === "PAUSED" && can(user, "operator")) {
    out.push(button("job-resume", "Resume", "resume"));
  }
  const cancellable = ["PROCESSING", "PAUSED"].includes(j.status) && can(user, "operator");
  const unapproved = ["PENDING", "AWAITING_APPROVAL"].includes(j.status) && (own || user.role === "admin");
  if (cancellable || unapproved) {
    out.push(button("job-cancel", "Cancel the remaining items", "cancel", "danger"));
  }
  if (["COMPLETED", "PROCESSING", "PAUSED"].includes(j.status) && (j.counts.FAILED || 0) > 0 && can(user, "checker")) {
    out.push(button("job-retry", "Retry retryable failures", "retry", "secondary"));
  }
  if (out.length === 0) {
    out.push(h("p", { class: "empty" }, actionsHint(j)));
  }
  out.push(error);
  return out;
}

function actionsHint(j) {
  if (j.status === "AWAITING_APPROVAL") {
    return "Waiting for a checker other than the uploader to approve or reject.";
  }
  if (j.status === "PENDING") {
    return "The file is being validated.";
  }
  return "No action is available to you for this job now.";
}

function rejectForm(screen) {
  return form(
    { id: "job-reject", class: "inline" },
    [field("Reason for rejecting", input("reason", { required: true, autocomplete: "off" }))],
    "Reject",
    async (_, v) => {
      const next = await api.post(`${screen.base}/reject/`, { reason: v.reason });
      notify(`Job ${next.status}.`);
      update(screen, next);
    },
  );
}

/** The 409 DUPLICATES_NOT_ACKNOWLEDGED answer: the lines, and an explicit acknowledgement. */
function acknowledge(screen, what, e) {
  const warnings = (e.details && e.details.warnings) || [];
  return form(
    { id: "job-acknowledge" },
    [
      h("p", { class: "error", role: "alert" }, describe(e)),
      h("ul", { class: "warnings" }, ...warnings.map((w) => h("li", {}, w))),
      field("I have checked these lines and want them paid again", input("ack", { type: "checkbox", required: true })),
    ],
    what === "retry" ? "Retry anyway" : "Approve anyway",
    async (_, v) => {
      if (!v.ack) {
        throw new Error("tick the box to acknowledge the duplicate lines first");
      }
      const next = await api.post(`${screen.base}/${what}/`, { acknowledge_duplicates: true });
      screen.actionsStatus = null;
      update(screen, next);
      follow(screen);
    },
  );
}

function downloads(screen) {
  const error = errorBox();
  const get = (name) => async () => {
    clearError(error);
    try {
      const bytes = await api.download(`${screen.base}/${name}`, name);
      notify(`${name} downloaded (${bytes} bytes).`);
    } catch (e) {
      showError(error, e);
    }
  };
  return h(
    "div",
    { class: "actions" },
    h("button", { type: "button", id: "download-results", class: "secondary", onclick: get("results.csv") }, "Download results.csv"),
    h("button", { type: "button", id: "download-errors", class: "secondary", onclick: get("errors.csv") }, "Download errors.csv"),
    error,
  );
}

async function loadReport(screen, cursor) {
  const page = await api.get(`${screen.base}/report/`, { limit: 100, cursor });
  if (!cursor) {
    screen.report.replaceChildren();
  }
  screen.report.append(
    table(
      "Validation problems by line and field",
      [
        ["Line", (p) => String(p.line)],
        ["Field", (p) => p.field || "—"],
        ["Problem", (p) => p.code],
        ["Message", (p) => p.message],
        ["Severity", (p) => p.severity || "error"],
      ],
      page.items,
      screen.job.status === "PENDING" ? "Validation is running." : "No problems were found in the file.",
    ),
    more(page.next_cursor, (n) => loadReport(screen, n)),
  );
}

function itemFilter(screen) {
  return form(
    { id: "item-filters", class: "inline", role: "search" },
    [field("Item status", select("status", ["", ...ITEM_STATUSES]))],
    "Show",
    (_, v) => loadItems(screen, v.status),
  );
}

async function loadItems(screen, status, cursor) {
  screen.itemStatus = status;
  const page = await api.get(`${screen.base}/items/`, { status, limit: 100, cursor });
  if (!cursor) {
    screen.items.replaceChildren();
  }
  screen.items.append(
    table(
      "Items",
      [
        ["Line", (i) => String(i.line)],
        ["MSISDN", (i) => i.msisdn || "—"],
        ["Amount", (i) => money(i.amount, screen.job.currency)],
        ["Reference", (i) => i.reference || ""],
        ["Status", (i) => badge(i.status)],
        ["Error", (i) => (i.error_code ? `${i.error_message || ""} (${i.error_code})` : "")],
        ["Transfer id", (i) => (i.status === "INVALID" ? "" : h("code", { title: i.transfer_id }, i.transfer_id.slice(0, 8)))],
        ["", (i) => (i.status === "IN_DOUBT" && can(screen.ctx.user, "checker") ? resolveItem(screen, i) : "")],
      ],
      page.items,
      "No items.",
    ),
    more(page.next_cursor, (n) => loadItems(screen, status, n)),
  );
}

/** Resolution of an IN_DOUBT item: ask the hub about its SDK transfer id, or record the outcome. */
function resolveItem(screen, item) {
  const how = select("how", [["hub", "Ask the hub"], ["COMPLETED", "Paid"], ["FAILED", "Not paid"]], {
    "aria-label": `Resolution of line ${item.line}`,
  });
  const reason = input("reason", { "aria-label": `Reason for line ${item.line}`, placeholder: "reason" });
  const error = errorBox();
  const go = async () => {
    clearError(error);
    try {
      const body = how.value === "hub"
        ? { sdk_transfer_id: item.sdk_transfer_id || "", reason: reason.value }
        : { outcome: how.value, reason: reason.value };
      await api.post(`${screen.base}/items/${item.line}/resolve/`, body);
      notify(`Line ${item.line} resolved.`);
      update(screen, await api.get(`${screen.base}/`));
      await loadItems(screen, screen.itemStatus || "");
    } catch (e) {
      showError(error, e);
    }
  };
  return h("div", { class: "row-actions" }, how, reason, h("button", { type: "button", onclick: go }, "Resolve"), error);
}
