// Bulk: drag-and-drop upload of a CSV with the paying wallet, and the list of jobs.
// One job (`#/bulk/{id}`) is the job screen of job.js.

import * as api from "/static/api.js";
import * as job from "/static/job.js";
import { h, field, input, select, form, section, table, money, badge, when, link, more, can } from "/static/ui.js";

const JOB_STATUSES = ["", "PENDING", "AWAITING_APPROVAL", "PROCESSING", "PAUSED", "COMPLETED", "CANCELLED", "FAILED", "REJECTED"];

/** `#/bulk` or `#/bulk/{job id}`. */
export async function render(view, ctx) {
  if (ctx.params[0]) {
    return job.render(view, ctx, ctx.params[0]);
  }
  view.append(h("h1", {}, "Bulk payments"));
  if (can(ctx.user, "maker")) {
    view.append(section("Upload a file", uploadForm()));
  }
  const results = h("div", { class: "results" });
  const filters = form(
    { id: "job-filters", class: "inline", role: "search" },
    [field("Status", select("status", JOB_STATUSES))],
    "Filter",
    async (_, v) => {
      results.replaceChildren();
      await loadJobs(results, v.status);
    },
  );
  view.append(section("Jobs", filters, results));
  await loadJobs(results, "");
}

async function loadJobs(container, status, cursor) {
  const page = await api.get("/api/v1/bulk/jobs/", { status, limit: 50, cursor });
  container.append(
    table(
      "Jobs",
      [
        ["Created", (j) => when(j.created_at)],
        ["File", (j) => link(`#/bulk/${j.job_id}`, j.file_name)],
        ["Source", (j) => j.source_msisdn],
        ["Items", (j) => String(j.total_count)],
        ["Total", (j) => money(j.total_amount, j.currency)],
        ["Status", (j) => badge(j.status)],
        ["Progress", (j) => `${j.progress} %`],
        ["By", (j) => j.created_by],
      ],
      page.items,
      "No jobs.",
    ),
    more(page.next_cursor, (n) => loadJobs(container, status, n)),
  );
}

/** The upload form: a drop zone around the file input, the source wallet and options. */
function uploadForm() {
  let chosen = null;
  const fileInput = input("file", { type: "file", accept: ".csv,text/csv", required: true });
  const chosenText = h("p", { class: "chosen", id: "chosen-file", "aria-live": "polite" }, "No file chosen.");
  const choose = (file) => {
    chosen = file || null;
    chosenText.textContent = chosen ? `${chosen.name} (${chosen.size} bytes)` : "No file chosen.";
  };
  fileInput.addEventListener("change", () => choose(fileInput.files[0]));
  const zone = h(
    "div",
    { class: "dropzone", id: "dropzone" },
    field("CSV file", fileInput),
    h("p", { class: "hint" }, "Drop a CSV file here, or choose one. Columns: msisdn, amount; optional currency, reference, name, note."),
    chosenText,
  );
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) {
      fileInput.files = event.dataTransfer.files;
      choose(file);
    }
  });
  return form(
    { id: "upload-form" },
    [
      zone,
      field("Paying wallet (source MSISDN)", input("source_msisdn", { inputmode: "tel", required: true, autocomplete: "off" })),
      field("Note", input("note", { maxlength: 128, autocomplete: "off" })),
      field("Skip invalid lines (pay the valid ones)", input("skip_invalid", { type: "checkbox" })),
      field("Allow a file already uploaded in the last 30 days", input("allow_duplicate", { type: "checkbox" })),
      field("Reason for uploading it again", input("reason", { autocomplete: "off" }), "needed with the box above"),
    ],
    "Upload",
    async (_, v) => {
      const data = new FormData();
      data.set("source_msisdn", v.source_msisdn.trim());
      data.set("skip_invalid", v.skip_invalid ? "true" : "false");
      data.set("allow_duplicate", v.allow_duplicate ? "true" : "false");
      if (v.reason.trim()) {
        data.set("reason", v.reason.trim());
      }
      if (v.note.trim()) {
        data.set("note", v.note.trim());
      }
      if (chosen) {
        data.set("file", chosen, chosen.name);
      }
      const j = await api.upload("/api/v1/bulk/upload/", data);
      location.hash = `#/bulk/${j.job_id}`;
    },
  );
}
