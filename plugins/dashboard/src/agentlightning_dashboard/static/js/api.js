// The store's REST API (/v1/agl), with the server's bearer token when one is set. The token lives in this tab's
// sessionStorage and goes only into the Authorization header, never into a URL.

const TOKEN_KEY = "agl-dashboard-token";
export const API_ROOT = new URL("../v1/agl/", document.baseURI);

export class AuthError extends Error {}

export class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
  }
}

let authWaiters = [];

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Query string from params: arrays become repeated keys, null/undefined/"" are left out. */
export function queryString(params = {}) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => search.append(key, v));
    else search.append(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function request(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const secret = token();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  const response = await fetch(new URL(path, API_ROOT), { ...options, headers, cache: "no-store" });
  if (response.status === 401) throw new AuthError("the server needs a bearer token");
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, (body && body.detail) || response.statusText);
  return body;
}

/** GET a route under /v1/agl; on 401, ask for the token (once for all waiting calls) and try again. */
export async function get(path, params) {
  for (;;) {
    try {
      return await request(path + queryString(params));
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      await new Promise((resolve) => {
        authWaiters.push(resolve);
        if (authWaiters.length === 1) document.dispatchEvent(new CustomEvent("agl-auth-needed"));
      });
    }
  }
}

/** Called by the login form once a token is set: every call waiting for it tries again. */
export function tokenEntered() {
  const waiters = authWaiters;
  authWaiters = [];
  waiters.forEach((resolve) => resolve());
}

/** Whether a token works: the rollouts route with limit 0 (health needs no token). */
export async function checkToken() {
  try {
    await request("rollouts?limit=0");
    return true;
  } catch (error) {
    if (error instanceof AuthError) return false;
    throw error;
  }
}

export const health = () => request("health");
