"""Resuming GRPO: what a stopped run left queued is cancelled; the history and training time carry over."""

from __future__ import annotations

import time
from typing import Any

import pytest
from agentlightning_torch.grpo import GRPO, StepReport

pytestmark = pytest.mark.anyio


def _memory() -> Any:
    from agentlightning_memory import InMemoryLightningStore

    return InMemoryLightningStore(watchdog_interval=None)


async def test_rollouts_a_stopped_run_left_queued_are_cancelled_not_served() -> None:
    store = _memory()
    queued = await store.enqueue_rollout({"keyword": "apple"}, mode="train")
    requeued = await store.enqueue_rollout({"keyword": "pear"}, mode="train")
    claimed = await store.dequeue_rollout(worker_id="Worker-0")
    assert claimed is not None and claimed.rollout_id == queued.rollout_id
    await store.update_attempt(queued.rollout_id, claimed.attempt.attempt_id, status="succeeded")
    await GRPO()._cancel_stale_rollouts(store)
    assert (await store.get_rollout_by_id(requeued.rollout_id)).status == "cancelled"  # type: ignore[union-attr]
    assert (await store.get_rollout_by_id(queued.rollout_id)).status == "succeeded"  # type: ignore[union-attr]
    assert await store.dequeue_rollout(worker_id="Worker-0") is None  # nothing left for a runner to send anywhere
    await store.close()


def test_a_checkpoints_history_and_training_time_carry_over() -> None:
    report = StepReport(
        step=3, kind="val", policy_version=4, resources_id="rs-1", rollouts=8, triplets=8, mean_reward=0.5,
        elapsed=40.0, total_rollouts=100, stalled_steps=0,
    )  # fmt: skip
    import attrs

    grpo = GRPO()
    before = time.time()
    grpo._resume_history({"elapsed": 40.0, "history": [attrs.asdict(report)]})
    after = time.time()
    assert grpo.history == [report]
    assert before - 40.0 <= grpo._start <= after - 40.0  # the clock goes on from 40 s of training
    assert grpo._best_val == 0.5 and grpo._best_val_step == 3
