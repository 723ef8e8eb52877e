"""The FIFO queue: ``dequeue_rollout``, ``dequeue_many_rollouts`` and requeues."""

from __future__ import annotations

import pytest

from agentlightning.store.base import LightningStore

from ._support import (
    rollout_ids,
    running_rollout,
)

__all__ = ["QueueTests"]


@pytest.mark.anyio
class QueueTests:
    """FIFO order, requeues, ``dequeue_many_rollouts``."""

    async def test_fifo(self, store: LightningStore) -> None:
        created = [await store.enqueue_rollout(i) for i in range(4)]
        claimed = [await store.dequeue_rollout() for _ in range(4)]
        assert rollout_ids(claimed) == rollout_ids(created)
        for item in claimed:
            assert item is not None and item.status == "preparing"
            assert item.attempt.status == "preparing" and item.attempt.sequence_id == 1

    async def test_empty_queue_returns_none_repeatedly(self, store: LightningStore) -> None:
        assert await store.dequeue_rollout() is None
        assert await store.dequeue_rollout() is None
        assert list(await store.dequeue_many_rollouts(limit=3)) == []

    async def test_skips_rollouts_changed_while_queued(self, store: LightningStore) -> None:
        first = await store.enqueue_rollout("first")
        second = await store.enqueue_rollout("second")
        await store.update_rollout(first.rollout_id, status="cancelled")
        claimed = await store.dequeue_rollout()
        assert claimed is not None and claimed.rollout_id == second.rollout_id
        assert await store.dequeue_rollout() is None
        cancelled = await store.get_rollout_by_id(first.rollout_id)
        assert cancelled is not None and cancelled.status == "cancelled"
        assert list(await store.query_attempts(first.rollout_id)) == []

    async def test_manual_requeue_creates_next_attempt(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        await store.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status="failed")
        requeued = await store.update_rollout(claimed.rollout_id, status="requeuing")
        assert requeued.status == "requeuing"
        again = await store.dequeue_rollout()
        assert again is not None and again.rollout_id == claimed.rollout_id
        assert again.attempt.sequence_id == 2 and again.attempt.attempt_id != claimed.attempt.attempt_id
        await store.update_attempt(claimed.rollout_id, "latest", status="succeeded")
        done = await store.get_rollout_by_id(claimed.rollout_id)
        assert done is not None and done.status == "succeeded"
        assert [a.status for a in await store.query_attempts(claimed.rollout_id)] == ["failed", "succeeded"]

    async def test_requeue_is_queued_once(self, store: LightningStore) -> None:
        first = await store.enqueue_rollout("first")
        await store.update_rollout(first.rollout_id, status="requeuing")  # already queued: no second entry
        await store.update_rollout(first.rollout_id, status="queuing")
        second = await store.enqueue_rollout("second")
        claimed = await store.dequeue_rollout()
        assert claimed is not None and claimed.rollout_id == first.rollout_id
        await store.update_rollout(first.rollout_id, status="requeuing")  # back at the tail, behind "second"
        order = [await store.dequeue_rollout(), await store.dequeue_rollout(), await store.dequeue_rollout()]
        assert rollout_ids(order[:2]) == [second.rollout_id, first.rollout_id] and order[2] is None

    async def test_dequeue_many(self, store: LightningStore) -> None:
        created = [await store.enqueue_rollout(i) for i in range(5)]
        assert list(await store.dequeue_many_rollouts(limit=0)) == []
        got = await store.dequeue_many_rollouts(limit=3, worker_id="w-many")
        assert rollout_ids(got) == rollout_ids(created[:3])
        assert all(item.attempt.worker_id == "w-many" for item in got)
        rest = await store.dequeue_many_rollouts(limit=10)
        assert rollout_ids(rest) == rollout_ids(created[3:])
        assert list(await store.dequeue_many_rollouts(limit=2)) == []

    async def test_dequeue_sets_worker_id(self, store: LightningStore) -> None:
        await store.enqueue_rollout("x")
        claimed = await store.dequeue_rollout(worker_id="w-1")
        assert claimed is not None and claimed.attempt.worker_id == "w-1"
