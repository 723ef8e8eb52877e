// Rewards of rollouts, read from their reward spans. A finished rollout's reward does not change, so it is read once
// per tab; an unfinished one is read again each time.

import { get } from "./api.js";
import { rewardOf, REWARD_SPAN_NAMES } from "./spans.js";

const FINISHED = ["succeeded", "failed", "cancelled"];
const PARALLEL = 6;
const known = new Map(); // rollout id -> reward (null: none) of finished rollouts

export async function rewardFor(rollout) {
  if (known.has(rollout.rollout_id)) return known.get(rollout.rollout_id);
  const spans = await get("spans", { rollout_id: rollout.rollout_id, name: REWARD_SPAN_NAMES[0],
    name_contains: REWARD_SPAN_NAMES[1], filter_logic: "or", limit: 50 });
  const value = rewardOf(spans.items);
  if (FINISHED.includes(rollout.status)) known.set(rollout.rollout_id, value);
  return value;
}

/** Rewards of many rollouts, a few requests at a time: [rollout, reward] in their order. */
export async function rewardsFor(rollouts, onEach = () => {}) {
  const out = [];
  for (let i = 0; i < rollouts.length; i += PARALLEL) {
    const chunk = rollouts.slice(i, i + PARALLEL);
    const values = await Promise.all(chunk.map(rewardFor));
    chunk.forEach((r, k) => {
      out.push([r, values[k]]);
      onEach(r, values[k]);
    });
  }
  return out;
}
