"""Concurrent callers: tasks of one event loop and threads with their own loops."""

from __future__ import annotations

import threading
from typing import List, Optional

import anyio
import pytest

from agentlightning.store.base import LightningStore
from agentlightning.types.core import (
    AttemptedRollout,
    EnqueueRolloutRequest,
)
from agentlightning.types.resources import PromptTemplate

from ._support import (
    make_otel_span,
    make_span,
    running_rollout,
)

__all__ = ["ConcurrencyTests"]


@pytest.mark.anyio
class ConcurrencyTests:
    """Concurrent dequeues, span writers, enqueues, resource updates and threads."""

    async def test_concurrent_dequeues(self, store: LightningStore) -> None:
        await store.enqueue_many_rollouts([EnqueueRolloutRequest(input=i) for i in range(20)])
        results: List[Optional[AttemptedRollout]] = []

        async def grab(index: int) -> None:
            results.append(await store.dequeue_rollout(worker_id=f"w-{index}"))

        async with anyio.create_task_group() as tg:
            for index in range(30):
                tg.start_soon(grab, index)
        claimed = [r for r in results if r is not None]
        assert len(results) == 30 and len(claimed) == 20
        assert len({r.rollout_id for r in claimed}) == 20
        assert all(r.attempt.sequence_id == 1 for r in claimed)

    async def test_concurrent_span_writers(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
        seen: List[int] = []

        async def write(index: int) -> None:
            if index % 2:
                span = await store.add_otel_span(rid, aid, make_otel_span(f"s{index}"))
                assert span is not None
                seen.append(span.sequence_id)
            else:
                seen.append(await store.get_next_span_sequence_id(rid, aid))

        async with anyio.create_task_group() as tg:
            for index in range(30):
                tg.start_soon(write, index)
        assert sorted(seen) == list(range(1, 31))
        assert (await store.query_spans(rid)).total == 15

    async def test_concurrent_enqueues(self, store: LightningStore) -> None:
        ids: List[str] = []

        async def enqueue(index: int) -> None:
            ids.append((await store.enqueue_rollout({"i": index})).rollout_id)

        async with anyio.create_task_group() as tg:
            for index in range(50):
                tg.start_soon(enqueue, index)
        assert len(set(ids)) == 50
        assert (await store.query_rollouts()).total == 50

    async def test_concurrent_resource_updates(self, store: LightningStore) -> None:
        async def update(index: int) -> None:
            await store.update_resources(f"rs-{index:03d}", {"p": PromptTemplate(template=str(index))})

        async with anyio.create_task_group() as tg:
            for index in range(50):
                tg.start_soon(update, index)
        stored = await store.query_resources()
        assert stored.total == 50
        assert {u.resources_id for u in stored} == {f"rs-{i:03d}" for i in range(50)}
        for update_ in stored:
            assert update_.resources["p"] == PromptTemplate(template=str(int(update_.resources_id[3:])))

    async def test_threads_with_their_own_event_loops(self, store: LightningStore, anyio_backend: str) -> None:
        errors: List[BaseException] = []

        async def work(index: int) -> None:
            for k in range(5):
                await store.enqueue_rollout({"thread": index, "k": k})
            for _ in range(5):
                claimed = await store.dequeue_rollout(worker_id=f"w-thread-{index}")
                assert claimed is not None
                await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
                await store.update_attempt(claimed.rollout_id, "latest", status="succeeded")

        def run(index: int) -> None:
            try:
                anyio.run(work, index, backend=anyio_backend)
            except BaseException as exc:  # noqa: BLE001 - reported in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,), name=f"suite-loop-{i}") for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await anyio.to_thread.run_sync(thread.join, 30.0)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        finished = await store.query_rollouts(status_in=["succeeded"])
        assert finished.total == 20
        assert (await store.statistics())["total_spans"] == 20
