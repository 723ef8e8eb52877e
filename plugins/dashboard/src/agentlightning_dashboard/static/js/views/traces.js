// Traces of one attempt: conversation, span table, tree by parent id, waterfall, token ids of each LLM call.

import { get } from "../api.js";
import { h, svg, replace, table, badge, time, duration, short, jsonBlock } from "../dom.js";
import { spanTree, flatten, conversation, isLlmCall, tokenHealth, rewardOf } from "../spans.js";

const TABS = { conversation: "Conversation", table: "Spans", tree: "Tree", waterfall: "Waterfall", tokens: "Token ids" };
const SPAN_LIMIT = 1000;

function mount(root, params, remember) {
  const state = { rollout: params.rollout || "", attempt: params.attempt || "", tab: TABS[params.tab] ? params.tab : "conversation" };
  const header = h("div", { class: "rollout-header" });
  const body = h("div", { class: "tab-body", role: "tabpanel", id: "trace-panel" });
  const save = () => remember({ rollout: state.rollout, attempt: state.attempt || null, tab: state.tab });
  const input = h("input", { type: "search", id: "trace-rollout", value: state.rollout, placeholder: "rollout id" });
  const tabs = h("div", { role: "tablist", "aria-label": "Trace views", class: "tabs" });
  const drawTabs = () => replace(tabs, Object.entries(TABS).map(([key, label]) =>
    h("button", { type: "button", role: "tab", id: `tab-${key}`, "aria-selected": String(key === state.tab), "aria-controls": "trace-panel",
      tabindex: key === state.tab ? "0" : "-1",
      onclick: () => { state.tab = key; save(); drawTabs(); view.update(); },
      onkeydown: (e) => {
        const keys = Object.keys(TABS);
        const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
        if (!step) return;
        state.tab = keys[(keys.indexOf(state.tab) + step + keys.length) % keys.length];
        save(); drawTabs(); tabs.querySelector('[aria-selected="true"]').focus(); view.update();
      } }, label)));
  drawTabs();
  root.append(
    h("h2", { id: "title-traces" }, "Traces"),
    h("form", { class: "controls", onsubmit: (e) => { e.preventDefault(); state.rollout = input.value.trim(); state.attempt = ""; save(); view.update(); } },
      h("label", {}, "Rollout ", input), h("button", { type: "submit" }, "Show")),
    header, tabs, body,
  );

  const view = {
    errors: body,
    async update() {
      if (!state.rollout) {
        const latest = await get("rollouts", { sort_by: "start_time", sort_order: "desc", limit: 1 });
        if (!latest.items.length) return replace(body, h("p", { class: "empty" }, "No rollouts yet."));
        state.rollout = latest.items[0].rollout_id;
        input.value = state.rollout;
        save();
      }
      const rolloutPath = `rollouts/${encodeURIComponent(state.rollout)}`;
      const [rollout, attempts] = await Promise.all([get(rolloutPath), get(`${rolloutPath}/attempts`, { limit: 100, sort_by: "sequence_id" })]);
      if (!rollout) {
        replace(header);
        replace(body, h("p", { class: "error" }, `No rollout ${state.rollout}.`));
        return;
      }
      const attempt = attempts.items.find((a) => a.attempt_id === state.attempt) || attempts.items[attempts.items.length - 1];
      const spans = attempt
        ? await get("spans", { rollout_id: state.rollout, attempt_id: attempt.attempt_id, limit: SPAN_LIMIT, sort_by: "sequence_id" })
        : { items: [], total: 0 };
      const reward = rewardOf(spans.items);
      const picker = h("select", { id: "trace-attempt", onchange: (e) => { state.attempt = e.target.value; save(); view.update(); } },
        attempts.items.map((a) => h("option", { value: a.attempt_id, selected: attempt && a.attempt_id === attempt.attempt_id }, `#${a.sequence_id} ${a.attempt_id} (${a.status})`)));
      replace(header,
        h("dl", { class: "facts" },
          h("dt", {}, "Rollout"), h("dd", { class: "mono" }, rollout.rollout_id),
          h("dt", {}, "Status"), h("dd", {}, badge(rollout.status)),
          h("dt", {}, "Mode"), h("dd", {}, rollout.mode || "—"),
          h("dt", {}, "Resources"), h("dd", {}, rollout.resources_id || "—"),
          h("dt", {}, "Reward"), h("dd", { "data-test": "reward" }, reward === null ? "—" : String(reward)),
          h("dt", {}, "Spans"), h("dd", {}, spans.total > spans.items.length ? `${spans.items.length} of ${spans.total} (first ${SPAN_LIMIT})` : String(spans.total))),
        attempts.items.length ? h("label", {}, "Attempt ", picker) : null,
        h("p", { class: "input" }, h("strong", {}, "Input: "), h("span", { class: "mono" }, short(rollout.input, 300))),
        jsonBlock(rollout, "Rollout JSON"));
      replace(body, RENDER[state.tab](spans.items));
    },
  };
  return view;
}

function renderConversation(spans) {
  const turns = conversation(spans);
  if (!turns.length) return h("p", { class: "empty" }, "No LLM calls with messages in this attempt.");
  return h("ol", { class: "conversation" }, turns.map((t) => t.divider
    ? h("li", { class: "divider" }, t.divider)
    : h("li", { class: `turn role-${t.role || "unknown"}`, "data-role": t.role || "unknown" },
      h("div", { class: "role" }, t.role || "?", t.tool_call_id ? ` (answer to ${t.tool_call_id})` : ""),
      t.content ? h("div", { class: "content" }, typeof t.content === "string" ? t.content : JSON.stringify(t.content)) : null,
      t.tool_calls.length ? h("ul", { class: "tool-calls" }, t.tool_calls.map((c) =>
        h("li", { "data-test": "tool-call" }, h("code", {}, `${c.name}(${c.arguments ?? ""})`), c.id ? h("span", { class: "muted" }, ` ${c.id}`) : null))) : null)));
}

function spanRow(s) {
  return [
    ["#", (x) => x.sequence_id],
    ["Name", (x) => h("span", { class: "mono" }, x.name)],
    ["Span", (x) => h("span", { class: "mono" }, x.span_id)],
    ["Parent", (x) => h("span", { class: "mono" }, x.parent_id || "—")],
    ["Status", (x) => badge(x.status && x.status.status_code)],
    ["Start", (x) => time(x.start_time)],
    ["Duration", (x) => duration(x.end_time - x.start_time)],
    ["Attributes", (x) => h("span", { class: "muted" }, short(Object.keys(x.attributes || {}).join(", "), 60))],
    ["", (x) => jsonBlock(x, "JSON")],
  ];
}

function renderTable(spans) {
  return table(spanRow(), spans, { empty: "No spans in this attempt.", rowAttrs: (x) => ({ "data-span-id": x.span_id }) });
}

function renderTree(spans) {
  if (!spans.length) return h("p", { class: "empty" }, "No spans in this attempt.");
  const build = (nodes) => h("ul", { role: "group" }, nodes.map((n) =>
    h("li", { role: "treeitem", "aria-expanded": n.children.length ? "true" : null, "data-span-id": n.span.span_id, "data-parent-id": n.span.parent_id || "" },
      h("details", { open: true },
        h("summary", {}, h("span", { class: "mono" }, n.span.name), " ", h("span", { class: "muted" }, `${duration(n.span.end_time - n.span.start_time)} · ${n.span.span_id}`),
          n.orphan ? h("span", { class: "badge status-requeuing", title: "its parent is not among this attempt's spans (or parent ids form a cycle)" }, "parent missing") : null),
        n.children.length ? build(n.children) : null))));
  const tree = build(spanTree(spans));
  tree.setAttribute("role", "tree");
  tree.classList.add("span-tree");
  return tree;
}

function renderWaterfall(spans) {
  if (!spans.length) return h("p", { class: "empty" }, "No spans in this attempt.");
  const rows = flatten(spanTree(spans));
  const start = Math.min(...spans.map((s) => s.start_time));
  const end = Math.max(...spans.map((s) => s.end_time ?? s.start_time));
  const span = Math.max(end - start, 1e-6);
  const width = 1000, label = 300, rowH = 22;
  const x = (t) => label + ((t - start) / span) * (width - label - 10);
  return h("figure", { class: "waterfall" },
    svg("svg", { viewBox: `0 0 ${width} ${rows.length * rowH + 24}`, role: "img", "aria-label": `Waterfall of ${rows.length} spans over ${duration(span)}` },
      svg("text", { x: label, y: 14, class: "axis" }, "0"),
      svg("text", { x: width - 10, y: 14, class: "axis", "text-anchor": "end" }, duration(span)),
      rows.map(([n, depth], i) => svg("g", { "data-span-id": n.span.span_id },
        svg("title", {}, `${n.span.name}: ${duration(n.span.end_time - n.span.start_time)}`),
        svg("text", { x: 4 + depth * 12, y: 24 + i * rowH + 14, class: "label" }, short(n.span.name, 36 - depth * 2)),
        svg("rect", { x: x(n.span.start_time), y: 24 + i * rowH + 4, height: rowH - 8, rx: 2,
          width: Math.max(2, x(n.span.end_time ?? n.span.start_time) - x(n.span.start_time)),
          class: isLlmCall(n.span) ? "bar llm" : n.span.status && n.span.status.status_code === "ERROR" ? "bar error" : "bar" })))),
    h("figcaption", {}, "Bars by start and end time; LLM calls highlighted; indented by parent."));
}

function renderTokens(spans) {
  const calls = spans.filter(isLlmCall).map(tokenHealth);
  if (!calls.length) return h("p", { class: "empty" }, "No LLM calls in this attempt.");
  const missing = calls.filter((c) => !c.ok).length;
  return h("div", {},
    h("p", { class: missing ? "warning" : "ok", role: "status" }, missing
      ? `${missing} of ${calls.length} LLM calls have no token ids.`
      : `All ${calls.length} LLM calls carry prompt and response token ids.`),
    table([
      ["#", (c) => c.span.sequence_id],
      ["Call", (c) => h("span", { class: "mono" }, c.span.name)],
      ["Prompt ids", (c) => (c.prompt === null ? badge("missing") : String(c.prompt))],
      ["Response ids", (c) => (c.response === null ? badge("missing") : String(c.response))],
      ["Usage (prompt / completion)", (c) => `${c.usagePrompt ?? "—"} / ${c.usageResponse ?? "—"}`],
      ["Health", (c) => (c.ok ? badge("ok") : badge("missing"))],
    ], calls, { rowAttrs: (c) => ({ "data-span-id": c.span.span_id }) }));
}

const RENDER = { conversation: renderConversation, table: renderTable, tree: renderTree, waterfall: renderWaterfall, tokens: renderTokens };

export default { title: "Traces", mount };
