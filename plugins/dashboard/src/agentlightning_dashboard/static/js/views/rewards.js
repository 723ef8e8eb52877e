// Rewards over time (train and held-out rollouts) and per resources version, from the latest finished rollouts,
// plus the store's statistics as the run's progress.

import { get } from "../api.js";
import { h, svg, replace, table, time } from "../dom.js";
import { rewardsFor } from "../rewards.js";

const WINDOW = 200; // rollouts read at most (one rewards request)

function mount(root) {
  const chart = h("div", { class: "chart" });
  const perVersion = h("div");
  const progress = h("div");
  root.append(h("h2", { id: "title-rewards" }, "Rewards"),
    h("p", { class: "muted" }, `From the latest ${WINDOW} finished rollouts.`), chart,
    h("h3", {}, "Per resources version"), perVersion, h("h3", {}, "Progress"), progress);
  const view = {
    errors: chart,
    async update() {
      const [page, stats] = await Promise.all([
        get("rollouts", { status_in: ["succeeded", "failed"], sort_by: "start_time", sort_order: "desc", limit: WINDOW }),
        get("statistics").catch(() => null),
      ]);
      const found = []; // newest first
      const draw = () => {
        const points = [...found].reverse();
        replace(chart, points.length ? plot(points) : h("p", { class: "empty" }, "No rewards yet."));
        replace(perVersion, table([
          ["Resources", (g) => h("span", { class: "mono" }, g.id)],
          ["Rollouts", (g) => g.values.length],
          ["Mean", (g) => mean(g.values).toFixed(3)],
          ["Min", (g) => Math.min(...g.values).toFixed(3)],
          ["Max", (g) => Math.max(...g.values).toFixed(3)],
          ["First rollout", (g) => time(g.first)],
        ], groups(points), { empty: "No rewards yet.", rowAttrs: (g) => ({ "data-resources-id": g.id }) }));
      };
      await rewardsFor(page.items, (r, reward) => {
        if (reward !== null) found.push({ ...r, reward });
      });
      draw();
      const entries = Object.entries(stats || {}).filter(([, v]) => typeof v === "number" || typeof v === "string");
      replace(progress, h("dl", { class: "facts" }, entries.map(([k, v]) => [h("dt", {}, k.replaceAll("_", " ")), h("dd", {}, typeof v === "number" && !Number.isInteger(v) ? v.toFixed(1) : String(v))])));
    },
  };
  return view;
}

function mean(values) {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function groups(points) {
  const byId = new Map();
  for (const p of points) {
    const id = p.resources_id || "—";
    if (!byId.has(id)) byId.set(id, { id, values: [], first: p.start_time });
    byId.get(id).values.push(p.reward);
  }
  return [...byId.values()];
}

function plot(points) {
  const W = 900, H = 280, L = 50, B = 30, T = 10;
  const t0 = points[0].start_time, t1 = points[points.length - 1].start_time;
  const order = new Map(points.map((p, i) => [p.rollout_id, i])); // x: the rollout's place in start order
  const lo = Math.min(0, ...points.map((p) => p.reward)), hi = Math.max(1, ...points.map((p) => p.reward));
  const x = (p) => L + (points.length > 1 ? (order.get(p.rollout_id) / (points.length - 1)) * (W - L - 10) : (W - L) / 2);
  const y = (v) => T + (1 - (v - lo) / (hi - lo || 1)) * (H - T - B);
  const series = (mode) => points.filter((p) => (mode === "val" ? p.mode === "val" || p.mode === "test" : p.mode !== "val" && p.mode !== "test"));
  const curve = (list) => {
    const k = Math.max(1, Math.round(list.length / 10));
    return list.map((p, i) => {
      const win = list.slice(Math.max(0, i - k + 1), i + 1);
      return `${i ? "L" : "M"}${x(p).toFixed(1)},${y(mean(win.map((q) => q.reward))).toFixed(1)}`;
    }).join(" ");
  };
  const train = series("train"), val = series("val");
  return h("figure", {},
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `Reward of ${points.length} rollouts in start order` },
      [lo, (lo + hi) / 2, hi].map((v) => svg("g", {}, svg("line", { x1: L, x2: W - 10, y1: y(v), y2: y(v), class: "grid" }),
        svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, v.toFixed(2)))),
      points.map((p, i) => (i && p.resources_id !== points[i - 1].resources_id
        ? svg("g", { class: "version-mark" }, svg("line", { x1: x(p), x2: x(p), y1: T, y2: H - B, class: "version" }),
          svg("text", { x: x(p) + 4, y: T + 12, class: "axis" }, p.resources_id || "—"))
        : null)),
      svg("text", { x: L, y: H - 8, class: "axis" }, time(t0)),
      svg("text", { x: W - 10, y: H - 8, class: "axis", "text-anchor": "end" }, time(t1)),
      train.map((p) => svg("circle", { cx: x(p), cy: y(p.reward), r: 3, class: "dot train" }, svg("title", {}, `${p.rollout_id}: ${p.reward}`))),
      val.map((p) => svg("circle", { cx: x(p), cy: y(p.reward), r: 3, class: "dot val" }, svg("title", {}, `${p.rollout_id} (held out): ${p.reward}`))),
      train.length > 1 ? svg("path", { d: curve(train), class: "curve train" }) : null,
      val.length > 1 ? svg("path", { d: curve(val), class: "curve val" }) : null),
    h("figcaption", {}, "Rollouts in the order they started; dashed lines: a new resources version. ", h("span", { class: "key train" }, "■"), " training rollouts (moving mean) ",
      h("span", { class: "key val" }, "■"), " held-out rollouts (val/test)"));
}

export default { title: "Rewards", mount };
