// Resources: every version (newest first), its LLMs and prompt templates, each template diffed with the one of the
// same name in the version before it (what an algorithm such as APO changed).

import { get } from "../api.js";
import { h, replace, table, time, pager, jsonBlock, short } from "../dom.js";
import { diffWords } from "../diff.js";

const PAGE = 20;

function mount(root, params, remember) {
  const state = { offset: Math.max(0, parseInt(params.offset || "0", 10) || 0) };
  const results = h("div", { class: "results" });
  root.append(h("h2", { id: "title-resources" }, "Resources"), results);
  const view = {
    errors: results,
    async update() {
      // one more than a page: the oldest version on the page is diffed with the one before it
      const page = await get("resources", { sort_by: "create_time", sort_order: "desc", limit: PAGE + 1, offset: state.offset });
      const shown = page.items.slice(0, PAGE);
      const cards = shown.map((update, i) => card(update, page.items.slice(i + 1)));
      const paging = { offset: state.offset, limit: PAGE, total: page.total };
      replace(results, pager(paging, (offset) => { state.offset = offset; remember({ offset }); view.update(); }),
        cards.length ? cards : h("p", { class: "empty" }, "No resources yet."));
    },
  };
  return view;
}

function card(update, older) {
  const entries = Object.entries(update.resources || {});
  const templates = entries.filter(([, r]) => r.resource_type === "prompt_template");
  const others = entries.filter(([, r]) => r.resource_type !== "prompt_template");
  return h("article", { class: "card", "data-resources-id": update.resources_id },
    h("h3", {}, h("span", { class: "mono" }, update.resources_id), ` · version ${update.version}`),
    h("p", { class: "muted" }, `created ${time(update.create_time)} · updated ${time(update.update_time)}`),
    others.length ? table([
      ["Name", ([name]) => name],
      ["Type", ([, r]) => r.resource_type],
      ["Model / endpoint", ([, r]) => h("span", { class: "mono" }, short([r.model, r.endpoint].filter(Boolean).join(" @ ") || JSON.stringify(r), 100))],
    ], others) : null,
    templates.map(([name, r]) => {
      const before = older.find((u) => u.resources && u.resources[name] && u.resources[name].resource_type === "prompt_template");
      return h("section", { class: "template", "data-template": name },
        h("h4", {}, `Prompt template “${name}”`, h("span", { class: "muted" }, ` (${r.engine || "f-string"})`),
          before ? h("span", { class: "muted" }, ` — changes since ${before.resources_id} v${before.version}`) : null),
        h("pre", { class: "diff" }, before
          ? diffWords(before.resources[name].template, r.template).map((p) => (p.op === "same" ? p.text : h(p.op === "add" ? "ins" : "del", {}, p.text)))
          : r.template));
    }),
    jsonBlock(update));
}

export default { title: "Resources", mount };
