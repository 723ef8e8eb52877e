// Small DOM helpers: elements, tables, pagers, formatting. Text always goes in as text nodes (never as HTML).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== null && value !== undefined) el.setAttribute(key, value);
  append(el, children);
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function time(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function ago(seconds) {
  if (!seconds) return "—";
  return `${duration(Math.max(0, Date.now() / 1000 - seconds))} ago`;
}

export function badge(status) {
  return h("span", { class: `badge status-${status || "none"}` }, status || "—");
}

export function link(hash, text, attrs = {}) {
  return h("a", { href: hash, ...attrs }, text);
}

export function short(text, max = 80) {
  const value = typeof text === "string" ? text : JSON.stringify(text);
  if (value === undefined) return "";
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

export function jsonBlock(value, label = "Raw JSON") {
  return h("details", { class: "json" }, h("summary", {}, label), h("pre", {}, JSON.stringify(value, null, 2)));
}

/** A table: columns are [header, row -> cell content]. */
export function table(columns, rows, { caption, empty = "Nothing here yet.", rowAttrs } = {}) {
  const head = h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", { scope: "col" }, title))));
  const body = h("tbody");
  if (!rows.length) body.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, empty)));
  for (const row of rows) {
    body.append(h("tr", rowAttrs ? rowAttrs(row) : {}, columns.map(([, cell]) => h("td", {}, cell(row)))));
  }
  return h("div", { class: "table-wrap" }, h("table", {}, caption ? h("caption", {}, caption) : null, head, body));
}

/** "41–60 of 123" with previous/next buttons. */
export function pager({ offset, limit, total }, go) {
  const last = Math.min(offset + limit, total);
  return h(
    "div",
    { class: "pager", role: "navigation", "aria-label": "Pages" },
    h("button", { type: "button", disabled: offset <= 0, onclick: () => go(Math.max(0, offset - limit)), "data-test": "prev" }, "← Previous"),
    h("span", { class: "range", "data-test": "range" }, total ? `${offset + 1}–${last} of ${total}` : "0 of 0"),
    h("button", { type: "button", disabled: last >= total, onclick: () => go(offset + limit), "data-test": "next" }, "Next →"),
  );
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, `Could not load: ${error.message || error}`);
}
