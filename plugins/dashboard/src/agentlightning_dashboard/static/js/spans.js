// What the dashboard reads out of spans: the tree by parent id, LLM calls and their token ids, the conversation
// (system/user/assistant/tool turns with tool calls), and rewards. Pure functions over the REST API's span JSON.

export const REWARD_SPAN_NAMES = ["agentlightning.annotation", "agentlightning.reward"];
const PROMPT_IDS = ["prompt_token_ids", "llm.hosted_vllm.prompt_token_ids", "agentlightning.operation.output.prompt_token_ids"];
const RESPONSE_IDS = ["response_token_ids", "llm.hosted_vllm.response_token_ids", "agentlightning.operation.output.response_token_ids"];

/** Spans as a forest: {span, children, orphan}. A span whose parent is not among them is a root (orphan: true), and
 * so is one span of each parent-id cycle (which would otherwise hang from nothing): every span appears once. */
export function spanTree(spans) {
  const nodes = new Map(spans.map((span) => [span.span_id, { span, children: [], orphan: false, parent: null }]));
  const roots = [];
  for (const node of nodes.values()) {
    const parent = node.span.parent_id ? nodes.get(node.span.parent_id) : undefined;
    if (parent && parent !== node) {
      parent.children.push(node);
      node.parent = parent;
    } else {
      node.orphan = Boolean(node.span.parent_id);
      roots.push(node);
    }
  }
  const seen = new Set();
  const visit = (node) => {
    seen.add(node);
    node.children.forEach(visit);
  };
  roots.forEach(visit);
  for (const start of nodes.values()) {
    if (seen.has(start)) continue; // not reached from a root: it is on a parent-id cycle or hangs from one
    const path = new Set();
    let node = start;
    while (!path.has(node)) {
      path.add(node);
      node = node.parent;
    }
    node.parent.children = node.parent.children.filter((c) => c !== node); // cut the cycle at a node on it
    node.orphan = true;
    roots.push(node);
    visit(node);
  }
  const order = (a, b) => a.span.start_time - b.span.start_time || a.span.sequence_id - b.span.sequence_id;
  const sortAll = (list) => {
    list.sort(order);
    list.forEach((n) => sortAll(n.children));
  };
  sortAll(roots);
  return roots;
}

/** Depth-first list of [node, depth]. */
export function flatten(roots, depth = 0, out = []) {
  for (const node of roots) {
    out.push([node, depth]);
    flatten(node.children, depth + 1, out);
  }
  return out;
}

/** Nested gen_ai.prompt.N.* / gen_ai.completion.N.* attributes as a list of messages. */
export function genaiMessages(attributes, prefix) {
  const byIndex = new Map();
  for (const [key, value] of Object.entries(attributes || {})) {
    if (!key.startsWith(prefix + ".")) continue;
    const [index, ...rest] = key.slice(prefix.length + 1).split(".");
    if (!/^\d+$/.test(index)) continue;
    if (!byIndex.has(+index)) byIndex.set(+index, { tool_calls: [] });
    const message = byIndex.get(+index);
    if (rest[0] === "tool_calls" && /^\d+$/.test(rest[1] || "")) {
      const call = (message.tool_calls[+rest[1]] ||= {});
      call[rest.slice(2).join(".")] = value;
    } else message[rest.join(".")] = value;
  }
  return [...byIndex.keys()].sort((a, b) => a - b).map((i) => {
    const m = byIndex.get(i);
    m.tool_calls = m.tool_calls.filter(Boolean);
    return m;
  });
}

export function isLlmCall(span) {
  const keys = Object.keys(span.attributes || {});
  return keys.some((k) => k.startsWith("gen_ai.prompt.") || k.startsWith("gen_ai.completion.") || PROMPT_IDS.includes(k));
}

function firstList(attributes, names) {
  for (const name of names) if (Array.isArray(attributes[name])) return attributes[name];
  return null;
}

/** Token-id health of one LLM call: ids present, their counts, and the usage the backend reported. */
export function tokenHealth(span) {
  const a = span.attributes || {};
  const prompt = firstList(a, PROMPT_IDS);
  const response = firstList(a, RESPONSE_IDS);
  return {
    span,
    prompt: prompt ? prompt.length : null,
    response: response ? response.length : null,
    usagePrompt: a["gen_ai.usage.prompt_tokens"] ?? null,
    usageResponse: a["gen_ai.usage.completion_tokens"] ?? null,
    ok: Boolean(prompt && prompt.length && response && response.length),
  };
}

/** The conversation of a rollout: each LLM call's new prompt turns, then its answer (with tool calls). */
export function conversation(spans) {
  const calls = spans.filter(isLlmCall).sort((a, b) => a.start_time - b.start_time || a.sequence_id - b.sequence_id);
  const turns = [];
  let seen = [];
  calls.forEach((span, index) => {
    const prompt = genaiMessages(span.attributes, "gen_ai.prompt");
    const continues = seen.length <= prompt.length && seen.every((m, i) => sameMessage(m, prompt[i]));
    if (!continues) seen = [];
    if (!continues && index > 0) turns.push({ divider: `LLM call ${index + 1} starts a new conversation` });
    prompt.slice(seen.length).forEach((m) => turns.push({ ...m, span_id: span.span_id }));
    const answers = genaiMessages(span.attributes, "gen_ai.completion");
    answers.forEach((m) => turns.push({ role: m.role || "assistant", ...m, span_id: span.span_id }));
    seen = [...prompt, ...answers.slice(0, 1)];
  });
  return turns;
}

function sameMessage(a, b) {
  return b && a.role === b.role && (a.content ?? "") === (b.content ?? "");
}

/** The rollout's reward: the primary dimension of its last reward span (null when none). */
export function rewardOf(spans) {
  let reward = null;
  const ordered = [...spans].sort((a, b) => a.sequence_id - b.sequence_id);
  for (const span of ordered) {
    const a = span.attributes || {};
    const value = a["agentlightning.reward.0.value"] ?? a.reward ?? null;
    if (REWARD_SPAN_NAMES.includes(span.name) && typeof value === "number") reward = value;
  }
  return reward;
}
