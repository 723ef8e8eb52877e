"""The store side of a step on a real memory store, under asyncio and trio."""

from __future__ import annotations

from collections import Counter

import pytest
from agentlightning.types.core import RolloutConfig
from agentlightning_memory import InMemoryLightningStore
from agentlightning_verl.algorithm import step_batches
from agentlightning_verl.rollouts import enqueue_groups, rollout_samples, wait_for_all
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.anyio
async def test_groups_waiting_and_samples(anyio_backend: str) -> None:
    store = InMemoryLightningStore()
    tasks = [{"q": 1}, {"q": 2}]
    rollouts = await enqueue_groups(store, tasks, n=3, mode="train", resources_id=None,
                                    config=RolloutConfig(timeout_seconds=5.0), step=7)  # fmt: skip
    assert len(rollouts) == 6
    groups = Counter(r.metadata["data_id"] for r in rollouts)
    assert sorted(groups.values()) == [3, 3]
    assert all(r.metadata["step"] == 7 and r.metadata["is_train"] and r.config.timeout_seconds == 5.0 for r in rollouts)
    assert [r.input for r in rollouts] == [{"q": 1}] * 3 + [{"q": 2}] * 3

    for rollout in rollouts[:4]:
        await store.update_rollout(rollout.rollout_id, status="succeeded")
    pending = await wait_for_all(store, [r.rollout_id for r in rollouts], timeout=0.3, poll=0.05)
    assert pending == {r.rollout_id for r in rollouts[4:]}

    samples = await rollout_samples(store, rollouts, adapter=None, skip=pending)
    assert [s.rollout_id for s in samples] == [r.rollout_id for r in rollouts[:4]]
    assert [s.group_id for s in samples] == [r.metadata["data_id"] for r in rollouts[:4]]
    assert all(s.turns == [] and s.reward is None for s in samples)  # no spans: no turns, reward filled later


@given(st.integers(0, 40), st.integers(1, 12), st.integers(0, 5), st.integers(0, 3))
def test_step_batches_cover_each_item_at_most_once_per_epoch(n: int, size: int, epoch: int, seed: int) -> None:
    batches = step_batches(n, size, epoch, seed)
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat)) and set(flat) <= set(range(n))
    if n > size:
        assert all(len(b) == size for b in batches) and len(batches) == n // size
    else:
        assert flat == [] if n == 0 else sorted(flat) == list(range(n))
    assert batches == step_batches(n, size, epoch, seed)  # deterministic: resume sees the same batches
