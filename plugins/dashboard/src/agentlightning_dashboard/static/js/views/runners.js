// Runners (workers): status, heartbeat, current rollout and attempt, machine stats.

import { get } from "../api.js";
import { h, replace, table, badge, ago, pager, link, jsonBlock } from "../dom.js";

const PAGE = 50;
const STATUSES = ["idle", "busy", "unknown"];

function mount(root, params, remember) {
  const state = { status: [].concat(params.status || []), offset: Math.max(0, parseInt(params.offset || "0", 10) || 0) };
  const results = h("div", { class: "results" });
  const boxes = STATUSES.map((s) => h("label", { class: "check" },
    h("input", { type: "checkbox", name: "worker-status", value: s, checked: state.status.includes(s),
      onchange: (e) => {
        state.status = e.target.checked ? [...state.status, s] : state.status.filter((x) => x !== s);
        state.offset = 0; remember({ status: state.status }); view.update();
      } }), s));
  root.append(h("h2", { id: "title-runners" }, "Runners"),
    h("form", { class: "controls" }, h("fieldset", {}, h("legend", {}, "Status"), boxes)), results);
  const view = {
    errors: results,
    async update() {
      const page = await get("workers", { status_in: state.status, sort_by: "worker_id", limit: PAGE, offset: state.offset });
      replace(results, pager(page, (offset) => { state.offset = offset; remember({ status: state.status, offset }); view.update(); }),
        table([
          ["Runner", (w) => h("span", { class: "mono" }, w.worker_id)],
          ["Status", (w) => badge(w.status)],
          ["Heartbeat", (w) => ago(w.last_heartbeat_time)],
          ["Current rollout", (w) => (w.current_rollout_id
            ? link(`#/traces?rollout=${encodeURIComponent(w.current_rollout_id)}${w.current_attempt_id ? `&attempt=${encodeURIComponent(w.current_attempt_id)}` : ""}`, w.current_rollout_id, { class: "mono" })
            : "—")],
          ["Last dequeue", (w) => ago(w.last_dequeue_time)],
          ["Last busy", (w) => ago(w.last_busy_time)],
          ["Last idle", (w) => ago(w.last_idle_time)],
          ["Machine", (w) => stats(w.heartbeat_stats)],
          ["", (w) => jsonBlock(w, "JSON")],
        ], page.items, { empty: "No runners have reported yet.", rowAttrs: (w) => ({ "data-worker-id": w.worker_id }) }));
    },
  };
  return view;
}

function stats(s) {
  if (!s) return "—";
  const parts = [s.hostname, s.pid && `pid ${s.pid}`, s.cpu_usage_pct !== undefined && `CPU ${s.cpu_usage_pct}%`, s.mem_pct !== undefined && `mem ${s.mem_pct}%`];
  return parts.filter(Boolean).join(" · ") || "—";
}

export default { title: "Runners", mount };
