// Rollouts: status and mode filters, id search, sort, pages; each row expands to its attempts and raw JSON.

import { get } from "../api.js";
import { h, replace, table, pager, badge, time, duration, short, link, jsonBlock, ago } from "../dom.js";
import { isLlmCall, tokenHealth } from "../spans.js";
import { rewardsFor } from "../rewards.js";

export const STATUSES = ["queuing", "preparing", "running", "succeeded", "failed", "cancelled", "requeuing"];
export const MODES = ["train", "val", "test"];
const SORTS = { start_time: "Start time", end_time: "End time", status: "Status", rollout_id: "Rollout id" };
const PAGE_SIZES = [20, 50, 100, 200];

function mount(root, params, remember) {
  const state = {
    status: [].concat(params.status || []),
    mode: [].concat(params.mode || []),
    q: params.q || "",
    sort: SORTS[params.sort] ? params.sort : "start_time",
    order: params.order === "asc" ? "asc" : "desc",
    offset: Math.max(0, parseInt(params.offset || "0", 10) || 0),
    limit: Math.min(500, Math.max(1, parseInt(params.limit || "50", 10) || 50)),
  };
  const expanded = new Set();
  const shownRewards = new Map(); // what each row showed last: no flicker while a reward is read again
  const results = h("div", { class: "results", "aria-live": "polite" });
  const warning = h("div", { class: "warning-slot" });
  const save = () => remember({ status: state.status, mode: state.mode, q: state.q, sort: state.sort, order: state.order,
    limit: state.limit === 50 ? null : state.limit, offset: state.offset || null });
  const changed = () => {
    state.offset = 0;
    save();
    view.update();
  };

  // one checkbox per value of a filter (state[name]: the values checked; none checked: no filter)
  const checkboxes = (name, values) => values.map((value) =>
    h("label", { class: "check" },
      h("input", { type: "checkbox", value, checked: state[name].includes(value), name,
        onchange: (e) => {
          state[name] = e.target.checked ? [...state[name], value] : state[name].filter((v) => v !== value);
          changed();
        } }),
      value),
  );
  let timer;
  const search = h("input", { type: "search", id: "rollout-search", value: state.q, placeholder: "part of a rollout id",
    oninput: (e) => { clearTimeout(timer); timer = setTimeout(() => { state.q = e.target.value.trim(); changed(); }, 250); } });
  const sort = h("select", { id: "rollout-sort", onchange: (e) => { state.sort = e.target.value; changed(); } },
    Object.entries(SORTS).map(([value, label]) => h("option", { value, selected: value === state.sort }, label)));
  const order = h("select", { id: "rollout-order", onchange: (e) => { state.order = e.target.value; changed(); } },
    h("option", { value: "desc", selected: state.order === "desc" }, "newest / highest first"),
    h("option", { value: "asc", selected: state.order === "asc" }, "oldest / lowest first"));
  const sizes = PAGE_SIZES.includes(state.limit) ? PAGE_SIZES : [...PAGE_SIZES, state.limit].sort((a, b) => a - b);
  const perPage = h("select", { id: "rollout-limit", onchange: (e) => { state.limit = +e.target.value; changed(); } },
    sizes.map((n) => h("option", { value: n, selected: n === state.limit }, String(n))));

  root.append(
    h("h2", { id: "title-rollouts" }, "Rollouts"),
    warning,
    h("form", { class: "controls", onsubmit: (e) => e.preventDefault() },
      h("fieldset", {}, h("legend", {}, "Status"), checkboxes("status", STATUSES)),
      h("fieldset", {}, h("legend", {}, "Mode"), checkboxes("mode", MODES)),
      h("label", {}, "Id contains ", search),
      h("label", {}, "Sort by ", sort),
      h("label", {}, "Order ", order),
      h("label", {}, "Per page ", perPage)),
    results,
  );

  async function attemptsOf(rolloutId) {
    const page = await get(`rollouts/${encodeURIComponent(rolloutId)}/attempts`, { limit: 100, sort_by: "sequence_id" });
    return table([
      ["#", (a) => a.sequence_id],
      ["Attempt", (a) => link(`#/traces?rollout=${encodeURIComponent(rolloutId)}&attempt=${encodeURIComponent(a.attempt_id)}`, a.attempt_id)],
      ["Status", (a) => badge(a.status)],
      ["Worker", (a) => a.worker_id || "—"],
      ["Start", (a) => time(a.start_time)],
      ["Duration", (a) => duration((a.end_time ?? Date.now() / 1000) - a.start_time)],
      ["Heartbeat", (a) => ago(a.last_heartbeat_time)],
    ], page.items, { caption: `Attempts (${page.total})` });
  }

  async function tokenWarning(items) {
    const done = items.find((r) => r.status === "succeeded");
    if (!done) return replace(warning);
    const spans = await get("spans", { rollout_id: done.rollout_id, limit: 200 });
    const calls = spans.items.filter(isLlmCall).map(tokenHealth);
    const missing = calls.filter((c) => !c.ok).length;
    if (!calls.length || !missing) return replace(warning);
    replace(warning, h("p", { class: "warning", role: "status", "data-test": "token-warning" },
      `${missing} of ${calls.length} LLM calls of the latest finished rollout carry no token ids: training from token ids `,
      "(VERL) cannot use them. Ask the backend for them (vLLM: extra_body={'return_token_ids': True}). ",
      link(`#/traces?rollout=${encodeURIComponent(done.rollout_id)}&tab=tokens`, "See the calls")));
  }

  const view = {
    errors: results,
    async update() {
      const query = { status_in: state.status, mode_in: state.mode, rollout_id_contains: state.q || null, sort_by: state.sort,
        sort_order: state.order, limit: state.limit, offset: state.offset };
      const page = await get("rollouts", query);
      const rows = page.items;
      const details = new Map();
      await Promise.all(rows.filter((r) => expanded.has(r.rollout_id)).map(async (r) => details.set(r.rollout_id, await attemptsOf(r.rollout_id))));
      const tableEl = table([
        ["", (r) => h("button", { type: "button", class: "expand", "aria-expanded": String(expanded.has(r.rollout_id)),
          "aria-label": `attempts of ${r.rollout_id}`,
          onclick: () => { expanded.has(r.rollout_id) ? expanded.delete(r.rollout_id) : expanded.add(r.rollout_id); view.update(); } },
          expanded.has(r.rollout_id) ? "▾" : "▸")],
        ["Rollout", (r) => link(`#/traces?rollout=${encodeURIComponent(r.rollout_id)}`, r.rollout_id, { class: "mono" })],
        ["Status", (r) => badge(r.status)],
        ["Mode", (r) => r.mode || "—"],
        ["Resources", (r) => r.resources_id || "—"],
        ["Attempt", (r) => (r.attempt ? h("span", {}, `#${r.attempt.sequence_id} `, badge(r.attempt.status)) : "—")],
        ["Worker", (r) => (r.attempt && r.attempt.worker_id) || "—"],
        ["Start", (r) => time(r.start_time)],
        ["Duration", (r) => duration((r.end_time ?? Date.now() / 1000) - r.start_time)],
        ["Reward", (r) => h("span", { "data-reward-for": r.rollout_id }, shownRewards.get(r.rollout_id) ?? "…")],
        ["Input", (r) => h("span", { class: "mono" }, short(r.input, 48))],
      ], rows, { empty: "No rollouts match.", rowAttrs: (r) => ({ "data-rollout-id": r.rollout_id }) });
      const body = tableEl.querySelector("tbody");
      for (const [id, detail] of details) {
        const row = body.querySelector(`tr[data-rollout-id="${CSS.escape(id)}"]`);
        const rollout = rows.find((r) => r.rollout_id === id);
        row.after(h("tr", { class: "detail" }, h("td", { colspan: 11 }, detail, jsonBlock(rollout))));
      }
      replace(results, pager(page, (offset) => { state.offset = offset; save(); view.update(); }), tableEl);
      root.dispatchEvent(new CustomEvent("agl-shown", { bubbles: true }));
      await rewardsFor(rows, (r, reward) => {
        const cell = tableEl.querySelector(`[data-reward-for="${CSS.escape(r.rollout_id)}"]`);
        shownRewards.set(r.rollout_id, reward === null ? "—" : String(reward));
        if (cell) cell.textContent = shownRewards.get(r.rollout_id);
      });
      await tokenWarning(rows).catch(() => replace(warning));
    },
  };
  return view;
}

export default { title: "Rollouts", mount };
