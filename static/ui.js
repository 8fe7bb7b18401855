// Small DOM helpers shared by the screens: elements built without innerHTML (so no
// text from the server is ever parsed as HTML), labelled form fields, error boxes
// next to forms, tables, money and time formatting, and who may do what (SPEC §7).

import { ApiError, newIdempotencyKey, post } from "/static/api.js";

/** Creates an element: `h("button", {type: "submit", onclick: f}, "Send")`. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key.startsWith("on")) {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key in el && typeof value !== "string") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : value);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) {
      continue;
    }
    el.append(child instanceof Node ? child : String(child));
  }
}

let fieldSeq = 0;

/** A labelled field: `<div class="field"><label for=…>…</label><input id=…></div>`. */
export function field(label, control, hint) {
  fieldSeq += 1;
  const id = control.id || `f${fieldSeq}-${control.name || "field"}`;
  control.id = id;
  const children = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    children.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: control.type === "checkbox" ? "field check" : "field" }, ...children);
}

/** An `<input>`; `opts` become its attributes. */
export function input(name, opts) {
  return h("input", { name, type: "text", ...opts });
}

/** A `<select>` of `[value, label]` pairs (or plain values). */
export function select(name, options, opts) {
  const { value: selected, ...rest } = opts || {};
  const el = h("select", { name, ...rest });
  for (const o of options) {
    const [value, label] = Array.isArray(o) ? o : [o, o === "" ? "any" : o];
    el.append(h("option", { value }, label));
  }
  if (selected !== undefined) {
    el.value = selected;
  }
  return el;
}

/** A form with an error box after its fields; `onsubmit(form, values)` may throw. */
export function form(attrs, fields, submitLabel, onsubmit) {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const button = h("button", { type: "submit" }, submitLabel);
  const el = h("form", { ...attrs, novalidate: true }, ...fields, h("div", { class: "actions" }, button), error);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(error);
    button.disabled = true;
    try {
      await onsubmit(el, values(el));
    } catch (e) {
      showError(error, e, el);
    } finally {
      button.disabled = false;
    }
  });
  el.errorBox = error;
  return el;
}

/** The values of a form's named fields (checkboxes as booleans). */
export function values(formEl) {
  const out = {};
  for (const el of formEl.elements) {
    if (!el.name) {
      continue;
    }
    out[el.name] = el.type === "checkbox" ? el.checked : el.type === "file" ? el.files : el.value;
  }
  return out;
}

/** An empty, hidden error box for things that are not forms (buttons, lists). */
export function errorBox() {
  return h("p", { class: "error", role: "alert", hidden: true });
}

/** Shows an error in words; marks the field the API named as invalid. */
export function showError(box, e, formEl) {
  if (e && e.name === "AbortError") {
    return;
  }
  box.hidden = false;
  box.textContent = describe(e);
  const fieldName = e && e.details && e.details.field;
  if (formEl && fieldName && formEl.elements[fieldName]) {
    const el = formEl.elements[fieldName];
    el.setAttribute("aria-invalid", "true");
    el.addEventListener("input", () => el.removeAttribute("aria-invalid"), { once: true });
  }
}

/** Hides an error box. */
export function clearError(box) {
  box.hidden = true;
  box.textContent = "";
}

/** An error in words: the API's message with its code; a 403 says so plainly. */
export function describe(e) {
  if (e instanceof ApiError) {
    if (e.status === 403) {
      return `Not allowed: ${e.message} (${e.code}).`;
    }
    return e.status === 0 ? e.message : `${e.message} (${e.code})`;
  }
  return `Something went wrong in the page: ${e && e.message ? e.message : e}`;
}

/** A table with a caption; each column is `[heading, row => cell]`. */
export function table(caption, columns, rows, emptyText) {
  if (rows.length === 0) {
    return h("p", { class: "empty" }, emptyText || "Nothing to show.");
  }
  const head = h("tr", {}, ...columns.map(([title]) => h("th", { scope: "col" }, title)));
  const body = rows.map((row) => h("tr", {}, ...columns.map(([, cell]) => h("td", {}, cell(row)))));
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h("table", {}, h("caption", {}, caption), h("thead", {}, head), h("tbody", {}, ...body)),
  );
}

/** A section with a heading. */
export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

/** A status as a labelled badge. */
export function badge(status) {
  const kind = String(status || "").toLowerCase().replace(/_/g, "-");
  return h("span", { class: `badge ${kind}` }, status || "—");
}

/** Money: `1 500 XOF` (the amount string is never turned into a float). */
export function money(amount, currency) {
  if (amount === null || amount === undefined) {
    return "—";
  }
  const [whole, frac] = String(amount).split(".");
  const sign = whole.startsWith("-") ? "-" : "";
  const digits = whole.replace("-", "").replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
  return `${sign}${digits}${frac ? `.${frac}` : ""}${currency ? ` ${currency}` : ""}`;
}

/** Adds decimal strings exactly (BigInt on a common scale). */
export function addDecimals(...amounts) {
  const scale = Math.max(0, ...amounts.map((a) => (String(a).split(".")[1] || "").length));
  let total = 0n;
  for (const a of amounts) {
    const text = String(a);
    const negative = text.startsWith("-");
    const [whole, frac = ""] = text.replace("-", "").split(".");
    const units = BigInt(whole + frac.padEnd(scale, "0"));
    total += negative ? -units : units;
  }
  const negative = total < 0n;
  let digits = (negative ? -total : total).toString().padStart(scale + 1, "0");
  if (scale > 0) {
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`.replace(/\.?0+$/, "");
  }
  return `${negative && digits !== "0" ? "-" : ""}${digits}`;
}

/** A time as the browser's local date and time. */
export function when(ts) {
  if (!ts) {
    return "—";
  }
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? ts : d.toLocaleString();
}

/** A link inside the page. */
export function link(href, text) {
  return h("a", { href }, text);
}

/** A "More" button that loads the next page of a list into `container`. */
export function more(nextCursor, load) {
  if (!nextCursor) {
    return "";
  }
  const button = h("button", { type: "button", class: "secondary" }, "More");
  button.addEventListener("click", () => {
    button.remove();
    load(nextCursor);
  });
  return button;
}

const RULES = {
  // create wallets, deposit, withdraw, P2P, adjustment requests, uploads
  maker: ["maker", "admin"],
  // approve and reject, retry, resolve IN_DOUBT, freeze and unfreeze
  checker: ["checker", "admin"],
  // pause, resume and cancel a running job
  operator: ["maker", "checker", "admin"],
  // users, audit log
  admin: ["admin"],
};

/** Whether `user` may use the controls of `rule` (SPEC §7): others are not shown. */
export function can(user, rule) {
  return Boolean(user) && RULES[rule].includes(user.role);
}

/** Announces a short message to screen readers and sighted users. */
let noticeTimer = null;

export function notify(text) {
  const el = document.getElementById("notice");
  if (el) {
    el.textContent = text;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => {
      el.textContent = "";
    }, 6000);
  }
}

/**
 * An idempotency key per submission of a money form: a resubmission of the same,
 * unchanged form after a network failure reuses the key (the server replays the first
 * answer instead of moving money twice); any edit, or any answer, starts a new one.
 */
export function idempotencyKey(formEl) {
  let key = newIdempotencyKey();
  formEl.addEventListener("input", () => {
    key = newIdempotencyKey();
  });
  return {
    get: () => key,
    answered: () => {
      key = newIdempotencyKey();
    },
  };
}

/** POSTs a money request with the form's idempotency key (see `idempotencyKey`). */
export async function postOnce(key, path, body) {
  try {
    const reply = await post(path, body, { headers: { "Idempotency-Key": key.get() } });
    key.answered();
    return reply;
  } catch (e) {
    const unanswered = e instanceof ApiError && (e.status === 0 || e.code === "IDEMPOTENCY_IN_PROGRESS");
    if (!unanswered) {
      key.answered();
    }
    throw e;
  }
}
