// The shell: hash routing (#/view?key=value), live polling of the current view, health badge and token login.

import * as api from "./api.js";
import { h, replace, errorBox } from "./dom.js";
import rollouts from "./views/rollouts.js";
import traces from "./views/traces.js";
import resources from "./views/resources.js";
import runners from "./views/runners.js";
import rewards from "./views/rewards.js";

const VIEWS = { rollouts, traces, resources, runners, rewards };
const POLL_MS = 2000;

const main = document.getElementById("main");
const live = document.getElementById("live");
let current = null; // {name, view instance}
let busy = false;

export function parseHash(hash = location.hash) {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?");
  const params = {};
  for (const [key, value] of new URLSearchParams(query)) {
    if (key in params) params[key] = [].concat(params[key], value);
    else params[key] = value;
  }
  return { name: VIEWS[path] ? path : "rollouts", params };
}

/** Put a view's state in the address bar without reloading it (bookmarkable, back button). */
export function remember(name, params) {
  const query = api.queryString(params);
  history.replaceState(null, "", `#/${name}${query}`);
}

async function refresh() {
  if (!current || busy) return;
  busy = true;
  const mine = current;
  try {
    await mine.view.update();
    if (current === mine) {
      const stamp = `${mine.name}@${Date.now()}`; // for tests and scripts: the view shows all its data
      main.dataset.shown ||= stamp;
      main.dataset.loaded = stamp;
    }
  } catch (error) {
    if (!(error instanceof api.AuthError)) replace(mine.view.errors || main, errorBox(error));
  } finally {
    busy = false;
  }
}

function route() {
  const { name, params } = parseHash();
  document.querySelectorAll("nav a").forEach((a) => a.setAttribute("aria-current", a.dataset.view === name ? "page" : "false"));
  delete main.dataset.loaded;
  delete main.dataset.shown;
  const container = h("section", { class: `view view-${name}`, "aria-labelledby": `title-${name}` });
  replace(main, container);
  current = { name, view: VIEWS[name].mount(container, params, (p) => remember(name, p)) };
  document.title = `${VIEWS[name].title} · Agent Lightning`;
  busy = false;
  refresh();
}

async function checkHealth() {
  const badge = document.getElementById("health");
  try {
    await api.health();
    badge.textContent = "store up";
    badge.className = "badge status-succeeded";
  } catch {
    badge.textContent = "store unreachable";
    badge.className = "badge status-failed";
  }
}

function setUpLogin() {
  const dialog = document.getElementById("login");
  const form = document.getElementById("login-form");
  const input = document.getElementById("login-token");
  const error = document.getElementById("login-error");
  document.addEventListener("agl-auth-needed", () => {
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    api.setToken(input.value.trim());
    if (await api.checkToken()) {
      error.hidden = true;
      input.value = "";
      dialog.close();
      api.tokenEntered();
    } else {
      api.setToken(null);
      error.textContent = "The server refused this token.";
      error.hidden = false;
      input.select();
    }
  });
  dialog.addEventListener("cancel", (event) => event.preventDefault()); // nothing to show without the token
}

// a view that fills in details after its main table (rewards of the rollouts) says when the table is there
main.addEventListener("agl-shown", () => {
  if (current && !main.dataset.shown) main.dataset.shown = `${current.name}@${Date.now()}`;
});

setUpLogin();
window.addEventListener("hashchange", route);
route();
checkHealth();
setInterval(() => {
  if (live.checked && document.visibilityState === "visible") refresh();
}, POLL_MS);
setInterval(checkHealth, 10 * POLL_MS);
