// The API client: the session (token in sessionStorage, never in a URL), JSON
// requests with the bearer token, errors as ApiError, uploads, CSV downloads through
// fetch() and a Blob, and server-sent events read from a fetch() stream so that the
// Authorization header goes along.

const SESSION_KEY = "sysgp.session";

/** An API error: the HTTP status and the `{error: {code, message, details}}` body. */
export class ApiError extends Error {
  constructor(status, code, message, details, body) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details || null;
    this.body = body || null;
  }
}

let session = loadSession();

function loadSession() {
  try {
    const text = sessionStorage.getItem(SESSION_KEY);
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

function saveSession(value) {
  session = value;
  if (value) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  } else {
    sessionStorage.removeItem(SESSION_KEY);
  }
}

/** The signed-in user `{username, role}`, or null. */
export function currentUser() {
  return session ? session.user : null;
}

/** Forgets the session (the token expired or was revoked) and tells the page. */
function signedOut(message) {
  saveSession(null);
  window.dispatchEvent(new CustomEvent("sysgp:signed-out", { detail: { message } }));
}

function authHeaders(extra) {
  const headers = new Headers(extra || {});
  if (session) {
    headers.set("Authorization", `Bearer ${session.token}`);
  }
  return headers;
}

/** `path?query` with the empty values of `query` left out. */
export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && String(v).trim() !== "") {
      params.set(k, String(v).trim());
    }
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function send(method, path, { body, form, headers, signal } = {}) {
  const init = { method, headers: authHeaders(headers), signal, credentials: "same-origin", cache: "no-store" };
  if (form) {
    init.body = form;
  } else if (body !== undefined) {
    init.headers.set("Content-Type", "application/json");
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") {
      throw e;
    }
    throw new ApiError(0, "NETWORK", "The server could not be reached. Check the connection and try again.");
  }
  if (response.ok) {
    return response;
  }
  throw await toError(response);
}

async function toError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const e = body && body.error;
  const message = e && e.message ? e.message : `The server answered ${response.status} ${response.statusText}.`;
  const error = new ApiError(response.status, e ? e.code : `HTTP_${response.status}`, message, e && e.details, body);
  if (response.status === 401 && session) {
    signedOut("Your session has ended. Sign in again.");
  }
  return error;
}

/** A JSON request; resolves to the parsed body or rejects with an ApiError. */
export async function request(method, path, options) {
  const response = await send(method, path, options);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** GET `path` with `query`. */
export function get(path, query, options) {
  return request("GET", withQuery(path, query), options);
}

/** POST a JSON body (or no body when `body` is undefined). */
export function post(path, body, options) {
  return request("POST", path, { ...options, body });
}

/** POST a multipart form (a bulk upload). */
export function upload(path, form) {
  return request("POST", path, { form });
}

/** Signs in and keeps the token for this browser tab only. */
export async function login(username, password) {
  const r = await request("POST", "/api/v1/auth/login/", { body: { username, password } });
  saveSession({ token: r.token, expires_at: r.expires_at, user: r.user });
  return r.user;
}

/** Signs out: the server revokes the token, the page forgets it either way. */
export async function logout() {
  try {
    if (session) {
      await request("POST", "/api/v1/auth/logout/");
    }
  } finally {
    saveSession(null);
  }
}

/** Downloads `path` (a CSV) with the token in the header, saved as `fileName`. */
export async function download(path, fileName) {
  const response = await send("GET", path);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = fileName;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has read the Blob once the click was handled.
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return blob.size;
}

/**
 * Reads the server-sent events of `path`, calling `onEvent(name, data)` for each,
 * until the server ends the stream or `signal` aborts. Resolves when the stream ends.
 */
export async function streamEvents(path, onEvent, signal) {
  const response = await send("GET", path, { headers: { Accept: "text/event-stream" }, signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return;
    }
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      dispatchEvent(block, onEvent);
    }
  }
}

function dispatchEvent(block, onEvent) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) {
      name = line.slice(6).trim();
    } else if (line.startsWith("data:")) {
      data.push(line.slice(5).replace(/^ /, ""));
    }
  }
  if (data.length > 0) {
    onEvent(name, JSON.parse(data.join("\n")));
  }
}

/** A fresh idempotency key (a UUID). */
export function newIdempotencyKey() {
  if (crypto.randomUUID) {
    return crypto.randomUUID();
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
