// Sign-in: user name and password; the API's message is shown next to the form.

import * as api from "/static/api.js";
import { h, field, input, form } from "/static/ui.js";

/** Renders the sign-in form; `ctx.onLogin()` runs once signed in. */
export function render(view, ctx) {
  const f = form(
    { id: "login-form", class: "narrow", "aria-labelledby": "login-title" },
    [
      field("User name", input("username", { autocomplete: "username", required: true, autocapitalize: "none" })),
      field("Password", input("password", { type: "password", autocomplete: "current-password", required: true })),
    ],
    "Sign in",
    async (_, v) => {
      await api.login(v.username.trim(), v.password);
      ctx.onLogin();
    },
  );
  view.append(
    h("h1", { id: "login-title" }, "Sign in"),
    ctx.message ? h("p", { class: "info", role: "status" }, ctx.message) : "",
    f,
  );
  f.elements.username.focus();
}
