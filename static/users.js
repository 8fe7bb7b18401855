// Users (admin only): the list, a new user, role changes, disable and enable, and
// password resets. Other roles get the API's 403 in words.

import * as api from "/static/api.js";
import { h, field, input, select, form, section, table, when, badge, notify, errorBox, showError, clearError } from "/static/ui.js";

const ROLES = ["viewer", "maker", "checker", "admin"];

/** `#/users`. */
export async function render(view, ctx) {
  view.append(h("h1", {}, "Users"));
  const list = h("div", { id: "user-list" });
  const reload = async () => {
    const page = await api.get("/api/v1/users/");
    list.replaceChildren(usersTable(page.items, ctx, reload));
  };
  const f = form(
    { id: "user-create", class: "inline" },
    [
      field("User name", input("username", { required: true, autocomplete: "off", autocapitalize: "none" })),
      field("Role", select("role", ROLES)),
      field("Password", input("password", { type: "password", required: true, autocomplete: "new-password" }), "12 to 128 characters"),
    ],
    "Create user",
    async (el, v) => {
      const u = await api.post("/api/v1/users/", { username: v.username.trim(), role: v.role, password: v.password });
      el.reset();
      notify(`User ${u.username} created.`);
      await reload();
    },
  );
  const page = await api.get("/api/v1/users/");
  list.append(usersTable(page.items, ctx, reload));
  view.append(section("New user", f), section("All users", list));
}

function usersTable(items, ctx, reload) {
  return table(
    "Users",
    [
      ["User", (u) => u.username],
      ["Role", (u) => u.role],
      ["State", (u) => badge(u.disabled ? "DISABLED" : "ACTIVE")],
      ["Created", (u) => `${when(u.created_at)} by ${u.created_by || "—"}`],
      ["Change", (u) => controls(u, reload)],
    ],
    items,
    "No users.",
  );
}

function controls(u, reload) {
  const error = errorBox();
  const act = (path, body) => async () => {
    clearError(error);
    try {
      await api.post(`/api/v1/users/${encodeURIComponent(u.username)}/${path}/`, body());
      notify(`User ${u.username} changed.`);
      await reload();
    } catch (e) {
      showError(error, e);
    }
  };
  const role = select("role", ROLES, { value: u.role, "aria-label": `New role for ${u.username}` });
  const password = input("password", { type: "password", autocomplete: "new-password", "aria-label": `New password for ${u.username}`, placeholder: "new password" });
  return h(
    "div",
    { class: "row-actions" },
    role,
    h("button", { type: "button", class: "secondary", onclick: act("role", () => ({ role: role.value })) }, "Set role"),
    h("button", { type: "button", class: "secondary", onclick: act(u.disabled ? "enable" : "disable", () => undefined) }, u.disabled ? "Enable" : "Disable"),
    password,
    h("button", { type: "button", class: "secondary", onclick: act("password", () => ({ password: password.value })) }, "Reset password"),
    error,
  );
}
