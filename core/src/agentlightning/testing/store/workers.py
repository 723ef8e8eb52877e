"""Workers: heartbeats, busy/idle tracking and ``query_workers``."""

from __future__ import annotations

import anyio
import pytest

from agentlightning.store.base import LightningStore
from agentlightning.types.core import (
    Worker,
)

from ._support import (
    running_rollout,
)

__all__ = ["WorkerTests"]


@pytest.mark.anyio
class WorkerTests:
    """``update_worker``, worker status derived from attempts, ``query_workers``."""

    async def test_update_worker_creates_and_keeps_stats(self, store: LightningStore) -> None:
        assert await store.get_worker_by_id("w-1") is None
        worker = await store.update_worker("w-1", {"gpu": 0.5})
        assert isinstance(worker, Worker)
        assert worker.worker_id == "w-1" and worker.status == "unknown" and worker.heartbeat_stats == {"gpu": 0.5}
        assert isinstance(worker.last_heartbeat_time, float)
        await anyio.sleep(0.005)
        again = await store.update_worker("w-1")
        assert again.heartbeat_stats == {"gpu": 0.5}
        assert again.last_heartbeat_time is not None and again.last_heartbeat_time >= worker.last_heartbeat_time
        assert await store.get_worker_by_id("w-1") == again

    async def test_heartbeat_stats_none_is_refused(self, store: LightningStore) -> None:
        with pytest.raises((TypeError, ValueError)):
            await store.update_worker("w-none", heartbeat_stats=None)  # type: ignore[arg-type]  # refused at run time

    async def test_busy_then_idle(self, store: LightningStore) -> None:
        await store.update_worker("w-b", {"load": 1})
        await store.enqueue_rollout("x")
        claimed = await store.dequeue_rollout(worker_id="w-b")
        assert claimed is not None
        busy = await store.get_worker_by_id("w-b")
        assert busy is not None and busy.status == "busy"
        assert busy.current_rollout_id == claimed.rollout_id
        assert busy.current_attempt_id == claimed.attempt.attempt_id
        assert busy.last_dequeue_time is not None and busy.last_busy_time is not None
        assert busy.heartbeat_stats == {"load": 1} and busy.last_heartbeat_time is not None
        await store.update_attempt(claimed.rollout_id, "latest", status="succeeded")
        idle = await store.get_worker_by_id("w-b")
        assert idle is not None and idle.status == "idle"
        assert idle.current_rollout_id is None and idle.current_attempt_id is None
        assert idle.last_idle_time is not None and idle.heartbeat_stats == {"load": 1}

    async def test_update_attempt_with_worker_id_marks_busy(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        await store.update_attempt(claimed.rollout_id, "latest", worker_id="w-late", status="running")
        worker = await store.get_worker_by_id("w-late")
        assert worker is not None and worker.status == "busy" and worker.current_rollout_id == claimed.rollout_id

    async def test_start_calls_mark_busy(self, store: LightningStore) -> None:
        started = await store.start_rollout("a", worker_id="w-start")
        worker = await store.get_worker_by_id("w-start")
        assert worker is not None and worker.status == "busy" and worker.current_rollout_id == started.rollout_id
        queued = await store.enqueue_rollout("b")
        attempted = await store.start_attempt(queued.rollout_id, worker_id="w-attempt")
        worker = await store.get_worker_by_id("w-attempt")
        assert worker is not None and worker.status == "busy"
        assert worker.current_attempt_id == attempted.attempt.attempt_id

    async def test_empty_dequeue_marks_idle(self, store: LightningStore) -> None:
        assert await store.dequeue_rollout(worker_id="w-idle") is None
        worker = await store.get_worker_by_id("w-idle")
        assert worker is not None and worker.status == "idle"
        assert worker.last_dequeue_time is not None and worker.last_idle_time is not None

    async def test_query_workers(self, store: LightningStore) -> None:
        for name in ("w-alpha", "w-beta", "w-gamma"):
            await store.update_worker(name, {})
        await store.enqueue_rollout("x")
        await store.dequeue_rollout(worker_id="w-beta")
        everyone = await store.query_workers()
        assert [w.worker_id for w in everyone] == ["w-alpha", "w-beta", "w-gamma"] and everyone.total == 3
        busy = await store.query_workers(status_in=["busy"])
        assert [w.worker_id for w in busy] == ["w-beta"]
        contains = await store.query_workers(worker_id_contains="gam")
        assert [w.worker_id for w in contains] == ["w-gamma"]
        anded = await store.query_workers(status_in=["busy"], worker_id_contains="gam")
        assert list(anded) == []
        ored = await store.query_workers(status_in=["busy"], worker_id_contains="gam", filter_logic="or")
        assert [w.worker_id for w in ored] == ["w-beta", "w-gamma"]
        desc = await store.query_workers(sort_by="worker_id", sort_order="desc")
        assert [w.worker_id for w in desc] == ["w-gamma", "w-beta", "w-alpha"]
        page = await store.query_workers(sort_by="worker_id", limit=1, offset=1)
        assert [w.worker_id for w in page] == ["w-beta"] and (page.limit, page.offset, page.total) == (1, 1, 3)
        zero = await store.query_workers(limit=0)
        assert list(zero) == [] and zero.total == 3
