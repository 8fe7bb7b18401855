// The page's entry point: hash routes (`#/accounts/22507000001`) to screens, the top
// bar with the screens this role may open, sign-in and sign-out. Each screen module
// exports `render(view, ctx)`; `ctx.signal` aborts its streams when the route changes.

import * as api from "/static/api.js";
import { h, can, describe, notify } from "/static/ui.js";
import * as login from "/static/login.js";
import * as dashboard from "/static/dashboard.js";
import * as accounts from "/static/accounts.js";
import * as transfers from "/static/transfers.js";
import * as adjustments from "/static/adjustments.js";
import * as bulk from "/static/bulk.js";
import * as users from "/static/users.js";
import * as audit from "/static/audit.js";

/** Screens by the first segment of the hash route, with the rule needed to open them. */
const SCREENS = {
  dashboard: { module: dashboard, label: "Dashboard" },
  accounts: { module: accounts, label: "Accounts" },
  transfers: { module: transfers, label: "Transfers" },
  adjustments: { module: adjustments, label: "Adjustments" },
  bulk: { module: bulk, label: "Bulk" },
  users: { module: users, label: "Users", rule: "admin" },
  audit: { module: audit, label: "Audit", rule: "admin" },
};

let controller = null;
let signedOutMessage = "";

function parseHash() {
  const hash = location.hash.startsWith("#/") ? location.hash.slice(2) : "dashboard";
  const [name, ...params] = hash.split("/").filter((s) => s !== "");
  return { name: name || "dashboard", params: params.map(decodeURIComponent) };
}

function renderNav(user, current) {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  nav.hidden = !user;
  who.hidden = !user;
  nav.replaceChildren();
  who.replaceChildren();
  if (!user) {
    return;
  }
  const list = h("ul");
  for (const [name, screen] of Object.entries(SCREENS)) {
    if (screen.rule && !can(user, screen.rule)) {
      continue;
    }
    const a = h("a", { href: `#/${name}` }, screen.label);
    if (name === current) {
      a.setAttribute("aria-current", "page");
    }
    list.append(h("li", {}, a));
  }
  nav.append(list);
  const out = h("button", { type: "button", class: "secondary", id: "logout" }, "Sign out");
  out.addEventListener("click", async () => {
    try {
      await api.logout();
    } catch {
      // The page forgets the token whatever the server said.
    }
    signedOutMessage = "You are signed out.";
    location.hash = "#/dashboard";
    route();
  });
  who.append(h("span", { class: "user" }, `${user.username} (${user.role})`), out);
}

async function route() {
  if (controller) {
    controller.abort();
  }
  controller = new AbortController();
  const main = document.getElementById("main");
  const view = h("div", { class: "view" });
  main.replaceChildren(view);
  const user = api.currentUser();
  const { name, params } = parseHash();
  renderNav(user, name);
  if (!user) {
    login.render(view, { message: signedOutMessage, onLogin: () => route() });
    signedOutMessage = "";
    return;
  }
  const screen = SCREENS[name];
  const ctx = { user, params, signal: controller.signal };
  try {
    if (!screen) {
      view.append(h("h1", { tabindex: "-1" }, "Not found"), h("p", {}, "There is no such screen."));
    } else {
      await screen.module.render(view, ctx);
    }
  } catch (e) {
    if (e.name !== "AbortError") {
      view.append(h("p", { class: "error", role: "alert" }, describe(e)));
    }
  }
  const heading = view.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#/")) {
    route();
  }
});

window.addEventListener("sysgp:signed-out", (event) => {
  signedOutMessage = event.detail.message;
  route();
});

window.addEventListener("unhandledrejection", (event) => {
  if (event.reason && event.reason.name === "AbortError") {
    event.preventDefault();
    return;
  }
  notify(describe(event.reason));
});

// The skip link moves focus without touching the hash, which holds the route.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});

route();
