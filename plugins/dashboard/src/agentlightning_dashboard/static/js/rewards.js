// Rewards of rollouts, read in one bounded request per batch (GET rollouts/rewards: each rollout's final reward,
// from its reward spans, read by the server). A finished rollout's reward does not change, so it is read once per
// tab; an unfinished one is read again each time.

import { get } from "./api.js";

const FINISHED = ["succeeded", "failed", "cancelled"];
export const BATCH = 200; // rollouts per request: what the server answers at most
const known = new Map(); // rollout id -> reward (null: none) of finished rollouts

/** Rewards of many rollouts: [rollout, reward] in their order; onEach(rollout, reward) as each batch is read. */
export async function rewardsFor(rollouts, onEach = () => {}) {
  const out = [];
  for (let i = 0; i < rollouts.length; i += BATCH) {
    const chunk = rollouts.slice(i, i + BATCH);
    const wanted = [...new Set(chunk.filter((r) => !known.has(r.rollout_id)).map((r) => r.rollout_id))];
    const read = new Map();
    if (wanted.length) {
      const answer = await get("rollouts/rewards", { rollout_id_in: wanted });
      answer.rewards.forEach((one) => read.set(one.rollout_id, one.reward));
    }
    for (const r of chunk) {
      const value = known.has(r.rollout_id) ? known.get(r.rollout_id) : (read.get(r.rollout_id) ?? null);
      if (FINISHED.includes(r.status)) known.set(r.rollout_id, value);
      out.push([r, value]);
      onEach(r, value);
    }
  }
  return out;
}
