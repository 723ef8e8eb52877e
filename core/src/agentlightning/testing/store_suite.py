"""The LightningStore conformance suite: every store plugin runs it by defining one fixture.

In the plugin's test module::

    import pytest
    from agentlightning.testing.store_suite import *  # noqa: F403

    @pytest.fixture
    def store_factory():
        async def make(**engine_options):
            return MyStore(**engine_options)  # a fresh, empty store
        return make

``engine_options`` are ``scan_debounce_seconds`` (float, 0 = scan in every call) and ``watchdog_interval`` (float
seconds, or None for no background watchdog). The suite closes every store it creates. Tests run on asyncio and trio
(``anyio_backend`` comes from :mod:`agentlightning.testing.pytest_plugin`).

The behaviour asserted is upstream Agent Lightning v0.3's store contract with our
deliberate changes: store errors are :mod:`agentlightning.store.errors` types, timeouts fire on an idle store when a
watchdog runs, OR span queries without filters return every span of the rollout, ``add_span`` returns an equal span,
unsorted queries return insertion order, ``limit=0`` returns no items but the right total.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional

import anyio
import pytest

from agentlightning.store.base import LightningStore
from agentlightning.store.errors import InvalidRequestError, NotFoundError, StoreClosedError
from agentlightning.types.core import (
    Attempt,
    AttemptedRollout,
    AttemptStatus,
    EnqueueRolloutRequest,
    PaginatedResult,
    Rollout,
    RolloutConfig,
    Worker,
)
from agentlightning.types.resources import LLM, NamedResources, PromptTemplate, ResourcesUpdate
from agentlightning.types.tracer import OtelResource, Span, SpanContext, TraceStatus

from .store_stateful import StoreStateMachine, run_store_state_machine, stateful_backends, stateful_settings

__all__ = [
    "store",
    "make_store",
    "make_span",
    "make_otel_span",
    "StoreStateMachine",
    "TestStoreStatistics",
    "TestStoreRollouts",
    "TestStoreQueryRollouts",
    "TestStoreQueue",
    "TestStoreAttempts",
    "TestStoreWorkers",
    "TestStoreResources",
    "TestStoreSpanSequence",
    "TestStoreSpans",
    "TestStoreQuerySpans",
    "TestStoreWatchdog",
    "TestStoreWaitForRollouts",
    "TestStoreConcurrency",
    "TestStoreValidation",
    "TestStoreClose",
    "TestStoreStateMachine",
]

MakeStore = Callable[..., Awaitable[LightningStore]]

WAKE_BOUND = 1.0
"""Seconds within which a waiter must observe a completion (a generous upper bound, not a timing target)."""


# -- fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture
async def make_store(store_factory: MakeStore) -> AsyncIterator[MakeStore]:
    """``await make_store(**engine_options)``: a fresh store, closed at teardown (defaults: scan every call, no
    watchdog)."""
    created: List[LightningStore] = []

    async def make(**options: Any) -> LightningStore:
        options.setdefault("scan_debounce_seconds", 0)
        options.setdefault("watchdog_interval", None)
        created.append(await store_factory(**options))
        return created[-1]

    try:
        yield make
    finally:
        for made in reversed(created):
            await made.close()


@pytest.fixture
async def store(make_store: MakeStore) -> LightningStore:
    """A fresh store that scans for unhealthy attempts in every call and runs no background watchdog."""
    return await make_store()


# -- helpers --------------------------------------------------------------------------------------------------------


def make_span(
    rollout_id: str,
    attempt_id: str,
    sequence_id: int,
    *,
    span_id: Optional[str] = None,
    trace_id: Optional[str] = None,
    parent_id: Optional[str] = None,
    name: str = "span",
    attributes: Optional[Dict[str, Any]] = None,
) -> Span:
    """A finished span with fresh (or the given) ids."""
    span_id = span_id or uuid.uuid4().hex[:16]
    trace_id = trace_id or uuid.uuid4().hex
    return Span(
        rollout_id=rollout_id,
        attempt_id=attempt_id,
        sequence_id=sequence_id,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name=name,
        status=TraceStatus(status_code="OK"),
        attributes=dict(attributes or {}),
        events=[],
        links=[],
        start_time=1700000000.0,
        end_time=1700000001.0,
        context=SpanContext(trace_id=trace_id, span_id=span_id),
        parent=SpanContext(trace_id=trace_id, span_id=parent_id) if parent_id else None,
        resource=OtelResource(attributes={"service.name": "suite"}),
    )


def make_otel_span(name: str = "otel") -> Any:
    """A finished OpenTelemetry SDK span (a ``ReadableSpan``) from a private tracer provider."""
    from opentelemetry.sdk.trace import TracerProvider

    span = TracerProvider().get_tracer("agentlightning.testing").start_span(name, attributes={"k": "v"})
    span.end()
    return span


async def _running_rollout(store: LightningStore, **kwargs: Any) -> AttemptedRollout:
    await store.enqueue_rollout({"task": 1}, **kwargs)
    claimed = await store.dequeue_rollout()
    assert claimed is not None
    return claimed


def _ids(items: Any) -> List[str]:
    return [item.rollout_id for item in items]


async def _poll(predicate: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.05) -> bool:
    """Await ``predicate`` every ``interval`` seconds until true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if await predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        await anyio.sleep(interval)


# -- statistics -----------------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreStatistics:
    async def test_counters_follow_operations(self, store: LightningStore) -> None:
        stats = await store.statistics()
        assert stats["name"] == type(store).__name__
        for key in ("total_rollouts", "total_attempts", "total_spans", "total_resources", "total_workers"):
            assert stats.get(key) == 0, key
        await store.enqueue_rollout("a")
        assert (await store.statistics())["total_rollouts"] == 1
        claimed = await store.dequeue_rollout()
        assert claimed is not None
        assert (await store.statistics())["total_attempts"] == 1
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        assert (await store.statistics())["total_spans"] == 1
        await store.add_resources({"p": PromptTemplate(template="x")})
        assert (await store.statistics())["total_resources"] == 1
        await store.update_worker("w-stats", {"cpu": 1})
        assert (await store.statistics())["total_workers"] == 1

    async def test_uptime_increases(self, store: LightningStore) -> None:
        first = (await store.statistics())["uptime"]
        await anyio.sleep(0.02)
        second = (await store.statistics())["uptime"]
        assert first >= 0 and second > first


# -- creating and reading rollouts ----------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreRollouts:
    async def test_enqueue_echoes_fields(self, store: LightningStore) -> None:
        config = RolloutConfig(timeout_seconds=30.0, max_attempts=3, retry_condition=["failed", "timeout"])
        rollout = await store.enqueue_rollout(
            {"q": "2+2"}, mode="train", resources_id="rs-unknown", config=config, metadata={"k": 1}
        )
        assert rollout.rollout_id.startswith("ro-")
        assert rollout.status == "queuing"
        assert rollout.input == {"q": "2+2"} and rollout.mode == "train"
        assert rollout.resources_id == "rs-unknown"
        assert rollout.metadata == {"k": 1}
        assert rollout.config == config
        assert not isinstance(rollout, AttemptedRollout)
        stored = await store.get_rollout_by_id(rollout.rollout_id)
        assert stored is not None and stored.config == config and stored.status == "queuing"
        assert not isinstance(stored, AttemptedRollout)

    async def test_enqueue_defaults(self, store: LightningStore) -> None:
        before = time.time()
        rollout = await store.enqueue_rollout("plain")
        assert rollout.config == RolloutConfig()
        assert rollout.mode is None and rollout.resources_id is None
        assert not rollout.metadata
        assert rollout.end_time is None and before <= rollout.start_time <= time.time()

    async def test_config_is_copied(self, store: LightningStore) -> None:
        config = RolloutConfig(retry_condition=["failed"], max_attempts=2)
        first = await store.enqueue_rollout("a", config=config)
        config.retry_condition.append("timeout")
        second = await store.enqueue_rollout("b", config=RolloutConfig(max_attempts=5))
        stored = await store.get_rollout_by_id(first.rollout_id)
        assert stored is not None and stored.config.retry_condition == ["failed"]
        other = await store.get_rollout_by_id(second.rollout_id)
        assert other is not None and other.config.max_attempts == 5

    async def test_start_rollout(self, store: LightningStore) -> None:
        config = RolloutConfig(max_attempts=2)
        started = await store.start_rollout({"x": 1}, mode="val", config=config, metadata={"m": True})
        assert isinstance(started, AttemptedRollout)
        assert started.status == "preparing" and started.rollout_id.startswith("ro-")
        assert started.attempt.attempt_id.startswith("at-")
        assert started.attempt.sequence_id == 1 and started.attempt.status == "preparing"
        assert started.attempt.rollout_id == started.rollout_id
        assert started.config == config and started.mode == "val" and started.metadata == {"m": True}
        preparing = await store.query_rollouts(status_in=["preparing"])
        assert _ids(preparing) == [started.rollout_id]
        attempts = await store.query_attempts(started.rollout_id)
        assert [a.attempt_id for a in attempts] == [started.attempt.attempt_id]
        latest = await store.get_latest_attempt(started.rollout_id)
        assert latest is not None and latest.attempt_id == started.attempt.attempt_id
        assert await store.dequeue_rollout() is None, "start_rollout must not queue the rollout"

    async def test_enqueue_inherits_latest_resources(self, store: LightningStore) -> None:
        update = await store.add_resources({"llm": LLM(endpoint="http://127.0.0.1:1/v1", model="m")})
        inherited = await store.enqueue_rollout("a")
        explicit = await store.enqueue_rollout("b", resources_id="rs-given")
        started = await store.start_rollout("c")
        many = await store.enqueue_many_rollouts([EnqueueRolloutRequest(input="d")])
        assert inherited.resources_id == update.resources_id
        assert explicit.resources_id == "rs-given"
        assert started.resources_id == update.resources_id
        assert many[0].resources_id == update.resources_id

    async def test_enqueue_many_preserves_order_and_fields(self, store: LightningStore) -> None:
        requests = [
            EnqueueRolloutRequest(input={"i": 0}, mode="train"),
            EnqueueRolloutRequest(input={"i": 1}, metadata={"m": 1}, config=RolloutConfig(max_attempts=2)),
            EnqueueRolloutRequest(input={"i": 2}, resources_id="rs-x"),
        ]
        created = await store.enqueue_many_rollouts(requests)
        assert [r.input for r in created] == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert created[0].mode == "train" and created[1].metadata == {"m": 1}
        assert created[1].config.max_attempts == 2 and created[2].resources_id == "rs-x"
        assert all(r.status == "queuing" for r in created)
        assert len({r.rollout_id for r in created}) == 3
        dequeued = [await store.dequeue_rollout() for _ in range(3)]
        assert _ids(dequeued) == _ids(created)

    async def test_get_rollout_by_id(self, store: LightningStore) -> None:
        assert await store.get_rollout_by_id("ro-missing") is None
        queued = await store.enqueue_rollout("a")
        plain = await store.get_rollout_by_id(queued.rollout_id)
        assert plain is not None and not isinstance(plain, AttemptedRollout)
        claimed = await store.dequeue_rollout()
        assert claimed is not None
        with_attempt = await store.get_rollout_by_id(queued.rollout_id)
        assert isinstance(with_attempt, AttemptedRollout)
        assert with_attempt.attempt.attempt_id == claimed.attempt.attempt_id
        second = await store.start_attempt(queued.rollout_id)
        latest = await store.get_rollout_by_id(queued.rollout_id)
        assert isinstance(latest, AttemptedRollout) and latest.attempt.attempt_id == second.attempt.attempt_id
        await store.update_rollout(queued.rollout_id, metadata={"seen": True})
        refreshed = await store.get_rollout_by_id(queued.rollout_id)
        assert refreshed is not None and refreshed.metadata == {"seen": True}

    async def test_update_rollout_fields(self, store: LightningStore) -> None:
        rollout = await store.enqueue_rollout("old", mode="train", metadata={"a": 1})
        other = await store.enqueue_rollout("other")
        config = RolloutConfig(timeout_seconds=5.0, max_attempts=4, retry_condition=["timeout"])
        updated = await store.update_rollout(
            rollout.rollout_id,
            input="new",
            mode="test",
            resources_id="rs-new",
            status="running",
            config=config,
            metadata={"b": 2},
        )
        assert updated.input == "new" and updated.mode == "test" and updated.resources_id == "rs-new"
        assert updated.status == "running" and updated.config == config and updated.metadata == {"b": 2}
        stored = await store.get_rollout_by_id(rollout.rollout_id)
        assert stored is not None and stored.config == config and stored.input == "new"
        untouched = await store.get_rollout_by_id(other.rollout_id)
        assert untouched is not None and untouched.config == RolloutConfig() and untouched.input == "other"

    async def test_update_rollout_none_clears_unset_keeps(self, store: LightningStore) -> None:
        rollout = await store.enqueue_rollout("x", mode="train", resources_id="rs-1", metadata={"a": 1})
        updated = await store.update_rollout(rollout.rollout_id, mode=None)
        assert updated.mode is None
        assert updated.resources_id == "rs-1" and updated.metadata == {"a": 1} and updated.input == "x"

    async def test_final_status_sets_end_time(self, store: LightningStore) -> None:
        for status in ("succeeded", "failed", "cancelled"):
            rollout = await store.enqueue_rollout(status)
            updated = await store.update_rollout(rollout.rollout_id, status=status)
            assert updated.end_time is not None and updated.end_time >= updated.start_time
        claimed = await _running_rollout(store)
        await anyio.sleep(0.01)
        await store.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status="succeeded")
        done = await store.get_rollout_by_id(claimed.rollout_id)
        assert done is not None and done.end_time is not None and done.end_time > done.start_time


# -- query_rollouts -------------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreQueryRollouts:
    async def _three(self, store: LightningStore) -> List[Rollout]:
        a = await store.enqueue_rollout("a", mode="train")
        b = await store.enqueue_rollout("b", mode=None)
        c = await store.enqueue_rollout("c", mode="val")
        await store.update_rollout(c.rollout_id, status="succeeded")
        return [a, b, c]

    async def test_all_in_insertion_order(self, store: LightningStore) -> None:
        rollouts = await self._three(store)
        result = await store.query_rollouts()
        assert _ids(result) == _ids(rollouts)
        assert result.total == 3 and result.limit == -1 and result.offset == 0

    async def test_status_filters(self, store: LightningStore) -> None:
        a, b, c = await self._three(store)
        assert _ids(await store.query_rollouts(status_in=["queuing"])) == [a.rollout_id, b.rollout_id]
        assert _ids(await store.query_rollouts(status_in=["succeeded"])) == [c.rollout_id]
        assert list(await store.query_rollouts(status_in=[])) == []

    async def test_deprecated_aliases(self, store: LightningStore) -> None:
        a, _, c = await self._three(store)
        with pytest.warns(DeprecationWarning):
            legacy = await store.query_rollouts(status=["succeeded"])
        assert _ids(legacy) == [c.rollout_id]
        with pytest.warns(DeprecationWarning):
            legacy_ids = await store.query_rollouts(rollout_ids=[a.rollout_id])
        assert _ids(legacy_ids) == [a.rollout_id]
        with pytest.warns(DeprecationWarning):
            both = await store.query_rollouts(status_in=["queuing"], status=["succeeded"])
        assert c.rollout_id not in _ids(both) and a.rollout_id in _ids(both)

    async def test_id_filters_and_logic(self, store: LightningStore) -> None:
        a, b, c = await self._three(store)
        assert _ids(await store.query_rollouts(rollout_id_in=[c.rollout_id, a.rollout_id])) == [
            a.rollout_id,
            c.rollout_id,
        ]
        assert _ids(await store.query_rollouts(rollout_id_contains=b.rollout_id[3:])) == [b.rollout_id]
        assert _ids(await store.query_rollouts(rollout_id_contains="ro-")) == _ids([a, b, c])
        anded = await store.query_rollouts(status_in=["succeeded"], rollout_id_in=[a.rollout_id])
        assert list(anded) == []
        ored = await store.query_rollouts(status_in=["succeeded"], rollout_id_in=[a.rollout_id], filter_logic="or")
        assert _ids(ored) == [a.rollout_id, c.rollout_id]

    async def test_returns_latest_attempt(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        queued = await store.enqueue_rollout("q")
        second = await store.start_attempt(claimed.rollout_id)
        by_id = {r.rollout_id: r for r in await store.query_rollouts()}
        assert not isinstance(by_id[queued.rollout_id], AttemptedRollout)
        got = by_id[claimed.rollout_id]
        assert isinstance(got, AttemptedRollout) and got.attempt.attempt_id == second.attempt.attempt_id

    async def test_sort_and_nulls(self, store: LightningStore) -> None:
        a, b, c = await self._three(store)
        asc = await store.query_rollouts(sort_by="mode")
        assert _ids(asc) == [b.rollout_id, a.rollout_id, c.rollout_id]
        desc = await store.query_rollouts(sort_by="mode", sort_order="desc")
        assert _ids(desc) == [c.rollout_id, a.rollout_id, b.rollout_id]
        by_time = await store.query_rollouts(sort_by="start_time", sort_order="desc")
        assert [r.start_time for r in by_time] == sorted((r.start_time for r in by_time), reverse=True)

    async def test_pagination(self, store: LightningStore) -> None:
        created = [await store.enqueue_rollout(i) for i in range(5)]
        page = await store.query_rollouts(limit=2, offset=1)
        assert _ids(page) == _ids(created[1:3])
        assert (page.limit, page.offset, page.total) == (2, 1, 5)
        assert list(await store.query_rollouts(offset=10)) == []
        empty = await store.query_rollouts(limit=0)
        assert list(empty) == [] and empty.total == 5
        filtered = await store.query_rollouts(rollout_id_in=_ids(created[:3]), limit=1, offset=2)
        assert _ids(filtered) == [created[2].rollout_id] and filtered.total == 3

    async def test_paginated_result_is_a_sequence(self, store: LightningStore) -> None:
        created = [await store.enqueue_rollout(i) for i in range(3)]
        result = await store.query_rollouts()
        assert isinstance(result, PaginatedResult)
        assert len(result) == 3 and result[0].rollout_id == created[0].rollout_id
        assert _ids(result[1:]) == _ids(created[1:]) and _ids(list(result)) == _ids(created)


# -- the queue ------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreQueue:
    async def test_fifo(self, store: LightningStore) -> None:
        created = [await store.enqueue_rollout(i) for i in range(4)]
        claimed = [await store.dequeue_rollout() for _ in range(4)]
        assert _ids(claimed) == _ids(created)
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
        claimed = await _running_rollout(store)
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
        assert _ids(order[:2]) == [second.rollout_id, first.rollout_id] and order[2] is None

    async def test_dequeue_many(self, store: LightningStore) -> None:
        created = [await store.enqueue_rollout(i) for i in range(5)]
        assert list(await store.dequeue_many_rollouts(limit=0)) == []
        got = await store.dequeue_many_rollouts(limit=3, worker_id="w-many")
        assert _ids(got) == _ids(created[:3])
        assert all(item.attempt.worker_id == "w-many" for item in got)
        rest = await store.dequeue_many_rollouts(limit=10)
        assert _ids(rest) == _ids(created[3:])
        assert list(await store.dequeue_many_rollouts(limit=2)) == []

    async def test_dequeue_sets_worker_id(self, store: LightningStore) -> None:
        await store.enqueue_rollout("x")
        claimed = await store.dequeue_rollout(worker_id="w-1")
        assert claimed is not None and claimed.attempt.worker_id == "w-1"


# -- attempts and status propagation --------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreAttempts:
    async def test_query_attempts(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        for _ in range(3):
            await store.start_attempt(claimed.rollout_id)
        asc = await store.query_attempts(claimed.rollout_id)
        assert [a.sequence_id for a in asc] == [1, 2, 3, 4] and asc.total == 4
        desc = await store.query_attempts(claimed.rollout_id, sort_order="desc")
        assert [a.sequence_id for a in desc] == [4, 3, 2, 1]
        page = await store.query_attempts(claimed.rollout_id, limit=2, offset=1)
        assert [a.sequence_id for a in page] == [2, 3] and (page.limit, page.offset, page.total) == (2, 1, 4)
        assert list(await store.query_attempts(claimed.rollout_id, offset=9)) == []
        zero = await store.query_attempts(claimed.rollout_id, limit=0)
        assert list(zero) == [] and zero.total == 4
        unknown = await store.query_attempts("ro-nonexistent")
        assert list(unknown) == [] and unknown.total == 0
        assert await store.get_latest_attempt("ro-nonexistent") is None
        queued = await store.enqueue_rollout("q")
        assert await store.get_latest_attempt(queued.rollout_id) is None

    async def test_start_attempt(self, store: LightningStore) -> None:
        queued = await store.enqueue_rollout("q", config=RolloutConfig(max_attempts=1))
        first = await store.start_attempt(queued.rollout_id, worker_id="w-a")
        assert first.attempt.sequence_id == 1 and first.status == "preparing" and first.attempt.worker_id == "w-a"
        second = await store.start_attempt(queued.rollout_id)
        third = await store.start_attempt(queued.rollout_id)
        assert (second.attempt.sequence_id, third.attempt.sequence_id) == (2, 3), "start_attempt ignores max_attempts"
        assert len({first.attempt.attempt_id, second.attempt.attempt_id, third.attempt.attempt_id}) == 3

    async def test_start_attempt_revives_final_rollout(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        await store.update_attempt(claimed.rollout_id, "latest", status="failed")
        failed = await store.get_rollout_by_id(claimed.rollout_id)
        assert failed is not None and failed.status == "failed"
        revived = await store.start_attempt(claimed.rollout_id)
        assert revived.status == "preparing" and revived.attempt.status == "preparing"

    async def test_update_attempt_fields(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        updated = await store.update_attempt(
            claimed.rollout_id,
            claimed.attempt.attempt_id,
            status="running",
            worker_id="w-up",
            last_heartbeat_time=123.0,
            metadata={"note": "x"},
        )
        assert isinstance(updated, Attempt)
        assert updated.status == "running" and updated.worker_id == "w-up"
        assert updated.last_heartbeat_time == 123.0 and updated.metadata == {"note": "x"}
        assert updated.end_time is None
        latest = await store.get_latest_attempt(claimed.rollout_id)
        assert latest == updated
        alias = await store.update_attempt(claimed.rollout_id, "latest", metadata={"note": "y"})
        assert alias.attempt_id == claimed.attempt.attempt_id and alias.metadata == {"note": "y"}
        assert alias.status == "running" and alias.worker_id == "w-up"

    async def test_end_time_only_for_failed_and_succeeded(self, store: LightningStore) -> None:
        ends_of: Dict[AttemptStatus, bool] = {
            "failed": True,
            "succeeded": True,
            "timeout": False,
            "unresponsive": False,
        }
        for status, ends in ends_of.items():
            claimed = await _running_rollout(store)
            await anyio.sleep(0.005)
            updated = await store.update_attempt(claimed.rollout_id, "latest", status=status)
            assert (updated.end_time is not None) is ends, status
            if ends:
                assert updated.end_time is not None and updated.end_time > updated.start_time

    async def test_failed_attempt_fails_rollout(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        attempt = await store.update_attempt(claimed.rollout_id, "latest", status="failed")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "failed"
        assert rollout.end_time is not None and attempt.end_time is not None and rollout.end_time >= attempt.end_time

    async def test_rollout_follows_latest_attempt(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        for status in ("running", "succeeded", "preparing"):
            await store.update_attempt(claimed.rollout_id, "latest", status=status)
            rollout = await store.get_rollout_by_id(claimed.rollout_id)
            assert rollout is not None and rollout.status == status

    async def test_only_latest_attempt_propagates(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        second = await store.start_attempt(claimed.rollout_id)
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert isinstance(rollout, AttemptedRollout)
        assert rollout.status == "preparing" and rollout.attempt.attempt_id == second.attempt.attempt_id
        await store.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status="succeeded")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "preparing"
        await store.update_attempt(claimed.rollout_id, second.attempt.attempt_id, status="running")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "running"

    @pytest.mark.parametrize("status", ["failed", "timeout", "unresponsive"])
    async def test_retry_only_while_attempts_remain(self, store: LightningStore, status: AttemptStatus) -> None:
        config = RolloutConfig(max_attempts=2, retry_condition=[status])
        claimed = await _running_rollout(store, config=config)
        await store.update_attempt(claimed.rollout_id, "latest", status=status)
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "requeuing"
        retry = await store.dequeue_rollout()
        assert retry is not None and retry.rollout_id == claimed.rollout_id and retry.attempt.sequence_id == 2
        await store.update_attempt(claimed.rollout_id, "latest", status=status)
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "failed"
        assert await store.dequeue_rollout() is None

    async def test_no_retry_outside_retry_condition(self, store: LightningStore) -> None:
        config = RolloutConfig(max_attempts=3, retry_condition=["timeout"])
        claimed = await _running_rollout(store, config=config)
        await store.update_attempt(claimed.rollout_id, "latest", status="failed")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "failed"

    async def test_final_rollout_not_protected(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        await store.update_attempt(claimed.rollout_id, "latest", status="failed")
        await store.update_attempt(claimed.rollout_id, "latest", status="succeeded")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "succeeded"

    async def test_update_rollout_does_not_touch_attempts(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        await store.update_rollout(claimed.rollout_id, status="cancelled")
        attempt = await store.get_latest_attempt(claimed.rollout_id)
        assert attempt is not None and attempt.status == "preparing"


# -- workers --------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreWorkers:
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
        claimed = await _running_rollout(store)
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


# -- resources ------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreResources:
    async def test_add_resources(self, store: LightningStore) -> None:
        assert await store.get_latest_resources() is None
        resources: NamedResources = {
            "llm": LLM(endpoint="http://127.0.0.1:9/v1", model="m", sampling_parameters={"temperature": 0.1}),
            "prompt": PromptTemplate(template="Hello {name}"),
        }
        update = await store.add_resources(resources)
        assert isinstance(update, ResourcesUpdate)
        assert update.resources_id.startswith("rs-") and len(update.resources_id) == 15
        assert update.version == 1 and update.create_time == update.update_time
        assert update.resources == resources
        assert await store.get_latest_resources() == update
        assert await store.get_resources_by_id(update.resources_id) == update
        assert await store.get_resources_by_id("rs-missing") is None
        other = await store.add_resources({"prompt": PromptTemplate(template="x")})
        assert other.resources_id != update.resources_id
        latest = await store.get_latest_resources()
        assert latest is not None and latest.resources_id == other.resources_id

    async def test_update_resources_upserts_and_versions(self, store: LightningStore) -> None:
        created = await store.update_resources("custom", {"p": PromptTemplate(template="v1")})
        assert created.resources_id == "custom" and created.version == 1
        other = await store.update_resources("other", {"p": PromptTemplate(template="o1")})
        latest = await store.get_latest_resources()
        assert latest is not None and latest.resources_id == "other"
        await anyio.sleep(0.005)
        second = await store.update_resources("custom", {"p": PromptTemplate(template="v2")})
        assert second.version == 2 and second.create_time == created.create_time
        assert second.update_time > created.update_time
        assert second.resources == {"p": PromptTemplate(template="v2")}
        latest = await store.get_latest_resources()
        assert latest is not None and latest.resources_id == "custom"
        stored_other = await store.get_resources_by_id("other")
        assert stored_other is not None and stored_other.version == other.version == 1

    async def test_query_resources(self, store: LightningStore) -> None:
        ids = []
        for i in range(4):
            ids.append((await store.add_resources({"p": PromptTemplate(template=str(i))})).resources_id)
        everything = await store.query_resources()
        assert [u.resources_id for u in everything] == ids and everything.total == 4
        exact = await store.query_resources(resources_id=ids[2])
        assert [u.resources_id for u in exact] == [ids[2]]
        contains = await store.query_resources(resources_id_contains=ids[1][3:])
        assert [u.resources_id for u in contains] == [ids[1]]
        both = await store.query_resources(resources_id=ids[0], resources_id_contains=ids[1][3:])
        assert list(both) == []
        desc = await store.query_resources(sort_by="resources_id", sort_order="desc")
        assert [u.resources_id for u in desc] == sorted(ids, reverse=True)
        page = await store.query_resources(limit=2, offset=1)
        assert [u.resources_id for u in page] == ids[1:3] and (page.limit, page.offset, page.total) == (2, 1, 4)
        assert list(await store.query_resources(offset=10)) == []


# -- span sequence ids ----------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreSpanSequence:
    async def test_allocation_is_per_rollout_and_shared(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
        first = await store.add_otel_span(rid, aid, make_otel_span("one"))
        assert first is not None and first.sequence_id == 1
        assert await store.get_next_span_sequence_id(rid, aid) == 2
        second = await store.add_otel_span(rid, aid, make_otel_span("two"))
        assert second is not None and second.sequence_id == 3
        assert await store.get_next_span_sequence_id(rid, "at-unknown") == 4
        retry = await store.start_attempt(rid)
        assert await store.get_next_span_sequence_id(rid, retry.attempt.attempt_id) == 5

    async def test_bulk_allocation(self, store: LightningStore) -> None:
        pairs = [("ro-A", "a1"), ("ro-B", "b1"), ("ro-A", "a2"), ("ro-A", "a1")]
        assert list(await store.get_many_span_sequence_ids(pairs)) == [1, 1, 2, 3]
        assert await store.get_next_span_sequence_id("ro-A", "a1") == 4
        assert await store.get_next_span_sequence_id("ro-B", "b1") == 2

    async def test_explicit_sequence_raises_counter(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
        stored = await store.add_otel_span(rid, aid, make_otel_span(), sequence_id=100)
        assert stored is not None and stored.sequence_id == 100
        assert await store.get_next_span_sequence_id(rid, aid) == 101
        await store.add_span(make_span(rid, aid, 150))
        assert await store.get_next_span_sequence_id(rid, aid) == 151
        await store.add_many_spans([make_span(rid, aid, 200), make_span(rid, aid, 160)])
        assert await store.get_next_span_sequence_id(rid, aid) == 201
        await store.add_span(make_span(rid, aid, 5))
        assert await store.get_next_span_sequence_id(rid, aid) == 202


# -- adding spans ---------------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreSpans:
    async def test_add_span_returns_equal_span_and_rejects_duplicates(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        span = make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1, attributes={"a": [1, 2], "b": "x"})
        stored = await store.add_span(span)
        assert stored == span
        assert await store.add_span(span) is None
        spans = await store.query_spans(claimed.rollout_id)
        assert list(spans) == [span]

    async def test_add_otel_span(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        otel = make_otel_span("converted")
        stored = await store.add_otel_span(claimed.rollout_id, claimed.attempt.attempt_id, otel)
        assert stored is not None
        assert stored.name == "converted" and stored.attributes == {"k": "v"}
        assert stored.rollout_id == claimed.rollout_id and stored.attempt_id == claimed.attempt.attempt_id
        assert await store.add_otel_span(claimed.rollout_id, claimed.attempt.attempt_id, otel) is None
        assert (await store.query_spans(claimed.rollout_id)).total == 1

    async def test_add_many_spans_skips_duplicates(self, store: LightningStore) -> None:
        one = await _running_rollout(store)
        two = await _running_rollout(store)
        retry = await store.start_attempt(one.rollout_id)
        a = make_span(one.rollout_id, one.attempt.attempt_id, 1)
        b = make_span(two.rollout_id, two.attempt.attempt_id, 1)
        c = make_span(one.rollout_id, retry.attempt.attempt_id, 2)
        stored = await store.add_many_spans([a, b, a, c])
        assert len(stored) == 3 and {s.span_id for s in stored} == {a.span_id, b.span_id, c.span_id}
        assert list(await store.add_many_spans([a])) == []
        assert (await store.query_spans(one.rollout_id)).total == 2
        assert (await store.query_spans(two.rollout_id)).total == 1

    async def test_same_span_id_in_other_attempt_is_not_a_duplicate(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        retry = await store.start_attempt(claimed.rollout_id)
        first = make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1, span_id="00000000000000aa")
        second = make_span(claimed.rollout_id, retry.attempt.attempt_id, 2, span_id="00000000000000aa")
        assert await store.add_span(first) is not None
        assert await store.add_span(second) is not None

    async def test_unknown_rollout_or_attempt(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        with pytest.raises(NotFoundError, match="Rollout nonexistent not found"):
            await store.add_span(make_span("nonexistent", claimed.attempt.attempt_id, 1))
        with pytest.raises(NotFoundError, match=f"Attempt attempt-missing not found for rollout {claimed.rollout_id}"):
            await store.add_span(make_span(claimed.rollout_id, "attempt-missing", 1))
        with pytest.raises(NotFoundError, match="Rollout nonexistent not found"):
            await store.add_otel_span("nonexistent", "at-x", make_otel_span())
        with pytest.raises(NotFoundError):
            await store.add_many_spans([make_span("nonexistent", "at-x", 1)])

    async def test_span_is_a_heartbeat(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        before = time.time()
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        attempt = await store.get_latest_attempt(claimed.rollout_id)
        assert attempt is not None and attempt.status == "running"
        assert attempt.last_heartbeat_time is not None and attempt.last_heartbeat_time >= before - 1e-3
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "running"
        await anyio.sleep(0.01)
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 2))
        later = await store.get_latest_attempt(claimed.rollout_id)
        assert later is not None and later.last_heartbeat_time is not None
        assert later.last_heartbeat_time > attempt.last_heartbeat_time

    async def test_span_revives_unresponsive_attempt(self, store: LightningStore) -> None:
        config = RolloutConfig(max_attempts=2, retry_condition=["unresponsive"])
        claimed = await _running_rollout(store, config=config)
        await store.update_attempt(claimed.rollout_id, "latest", status="unresponsive")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "requeuing"
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        attempt = await store.get_latest_attempt(claimed.rollout_id)
        assert attempt is not None and attempt.status == "running"
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "running"
        assert await store.dequeue_rollout() is None, "the stale queue entry of a revived rollout must be skipped"
        await store.update_attempt(claimed.rollout_id, "latest", status="succeeded")
        assert [a.sequence_id for a in await store.query_attempts(claimed.rollout_id)] == [1]

    async def test_span_on_final_attempt_keeps_status(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        await store.update_attempt(claimed.rollout_id, "latest", status="timeout")
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        attempt = await store.get_latest_attempt(claimed.rollout_id)
        assert attempt is not None and attempt.status == "timeout" and attempt.last_heartbeat_time is not None
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "failed"

    async def test_span_on_old_attempt_leaves_rollout(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        retry = await store.start_attempt(claimed.rollout_id)
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        old = (await store.query_attempts(claimed.rollout_id))[0]
        assert old.status == "running"
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert isinstance(rollout, AttemptedRollout) and rollout.status == "preparing"
        assert rollout.attempt.attempt_id == retry.attempt.attempt_id and rollout.attempt.status == "preparing"

    async def test_heartbeat_keeps_concurrent_metadata(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(store.update_attempt, rid, aid, metadata={"keep": True}))
            tg.start_soon(store.add_span, make_span(rid, aid, 1))
        attempt = await store.get_latest_attempt(rid)
        assert attempt is not None and attempt.metadata == {"keep": True} and attempt.status == "running"


# -- query_spans ----------------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreQuerySpans:
    async def _setup(self, store: LightningStore) -> Dict[str, Any]:
        claimed = await _running_rollout(store)
        rid, first = claimed.rollout_id, claimed.attempt.attempt_id
        retry = await store.start_attempt(rid)
        second = retry.attempt.attempt_id
        root = make_span(rid, first, 1, name="agent.run", trace_id="a" * 32, span_id="1" * 16)
        child = make_span(rid, first, 2, name="openai.chat.completion", trace_id="a" * 32, parent_id="1" * 16)
        other = make_span(rid, second, 3, name="agentlightning.reward", trace_id="b" * 32, span_id="2" * 16)
        await store.add_many_spans([root, child, other])
        noise = await _running_rollout(store)
        noisy = make_span(noise.rollout_id, noise.attempt.attempt_id, 1, name="agent.run", trace_id="a" * 32)
        await store.add_span(noisy)
        return {"rid": rid, "first": first, "second": second, "root": root, "child": child, "other": other}

    async def test_scopes(self, store: LightningStore) -> None:
        s = await self._setup(store)
        everything = await store.query_spans(s["rid"])
        assert [x.sequence_id for x in everything] == [1, 2, 3] and everything.total == 3
        assert list(await store.query_spans(s["rid"], s["first"])) == [s["root"], s["child"]]
        assert list(await store.query_spans(s["rid"], "latest")) == [s["other"]]
        assert list(await store.query_spans(s["rid"], "at-unknown")) == []
        assert list(await store.query_spans("ro-unknown")) == []
        queued = await store.enqueue_rollout("no attempts")
        assert list(await store.query_spans(queued.rollout_id, "latest")) == []

    async def test_filters(self, store: LightningStore) -> None:
        s = await self._setup(store)
        rid = s["rid"]
        assert [x.span_id for x in await store.query_spans(rid, trace_id="a" * 32)] == [
            s["root"].span_id,
            s["child"].span_id,
        ]
        assert list(await store.query_spans(rid, span_id=s["other"].span_id)) == [s["other"]]
        assert list(await store.query_spans(rid, parent_id_contains="1111")) == [s["child"]]
        assert list(await store.query_spans(rid, parent_id=s["root"].span_id)) == [s["child"]]
        assert list(await store.query_spans(rid, name="agent.run")) == [s["root"]]
        anded = await store.query_spans(rid, trace_id="a" * 32, name_contains="chat")
        assert list(anded) == [s["child"]]
        ored = await store.query_spans(rid, span_id_contains="2222", trace_id_contains="aaaa", filter_logic="or")
        assert [x.sequence_id for x in ored] == [1, 2, 3]
        paged = await store.query_spans(rid, name_contains="a", limit=1, offset=1)
        assert [x.sequence_id for x in paged] == [2] and paged.total == 3

    async def test_or_never_leaks_other_rollouts(self, store: LightningStore) -> None:
        s = await self._setup(store)
        ored = await store.query_spans(s["rid"], name="agent.run", trace_id="a" * 32, filter_logic="or")
        assert {x.rollout_id for x in ored} == {s["rid"]}
        assert [x.sequence_id for x in ored] == [1, 2]
        scoped = await store.query_spans(s["rid"], s["second"], trace_id="a" * 32, filter_logic="or")
        assert list(scoped) == []

    async def test_or_without_filters_returns_all(self, store: LightningStore) -> None:
        s = await self._setup(store)
        result = await store.query_spans(s["rid"], filter_logic="or")
        assert [x.sequence_id for x in result] == [1, 2, 3] and result.total == 3

    async def test_sort_and_pagination(self, store: LightningStore) -> None:
        s = await self._setup(store)
        desc = await store.query_spans(s["rid"], sort_order="desc", offset=1)
        assert [x.sequence_id for x in desc] == [2, 1] and (desc.offset, desc.total) == (1, 3)
        zero = await store.query_spans(s["rid"], limit=0)
        assert list(zero) == [] and zero.total == 3
        by_parent = await store.query_spans(s["rid"], sort_by="parent_id")
        assert by_parent[-1].span_id == s["child"].span_id, "None sorts first in asc"
        by_parent_desc = await store.query_spans(s["rid"], sort_by="parent_id", sort_order="desc")
        assert by_parent_desc[0].span_id == s["child"].span_id
        by_name = await store.query_spans(s["rid"], sort_by="name")
        assert [x.name for x in by_name] == sorted(x.name for x in by_name)


# -- the watchdog ---------------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreWatchdog:
    async def test_timeout_requeues(self, store: LightningStore) -> None:
        config = RolloutConfig(timeout_seconds=0.1, max_attempts=2, retry_condition=["timeout"])
        claimed = await _running_rollout(store, config=config)
        await anyio.sleep(0.2)
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert isinstance(rollout, AttemptedRollout)
        assert rollout.attempt.status == "timeout" and rollout.status == "requeuing"
        assert rollout.attempt.end_time is None
        retry = await store.dequeue_rollout()
        assert retry is not None and retry.attempt.sequence_id == 2

    async def test_unresponsive_fails_when_not_retried(self, store: LightningStore) -> None:
        config = RolloutConfig(unresponsive_seconds=0.1, max_attempts=3, retry_condition=["timeout"])
        claimed = await _running_rollout(store, config=config)
        await anyio.sleep(0.2)
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert isinstance(rollout, AttemptedRollout)
        assert rollout.attempt.status == "unresponsive" and rollout.status == "failed"

    async def test_marks_worker_unknown(self, store: LightningStore) -> None:
        await store.update_worker("w-wd", {"s": 1})
        await store.enqueue_rollout("x", config=RolloutConfig(timeout_seconds=0.1))
        claimed = await store.dequeue_rollout(worker_id="w-wd")
        assert claimed is not None
        await anyio.sleep(0.2)
        workers = await store.query_workers()
        worker = await store.get_worker_by_id("w-wd")
        assert worker is not None and worker.status == "unknown"
        assert worker.current_rollout_id is None and worker.heartbeat_stats == {"s": 1}
        assert [w.worker_id for w in workers] == ["w-wd"]

    async def test_recovered_attempt_finishes_without_retry(self, make_store: MakeStore) -> None:
        store = await make_store()
        config = RolloutConfig(unresponsive_seconds=0.1, max_attempts=2, retry_condition=["unresponsive"])
        claimed = await _running_rollout(store, config=config)
        await anyio.sleep(0.2)
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "requeuing"
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        await store.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status="succeeded")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "succeeded"
        assert await store.dequeue_rollout() is None
        assert len(await store.query_attempts(claimed.rollout_id)) == 1

    async def test_old_attempt_recovering_after_retry_leaves_rollout(self, store: LightningStore) -> None:
        config = RolloutConfig(timeout_seconds=0.3, max_attempts=2, retry_condition=["timeout"])
        claimed = await _running_rollout(store, config=config)
        await anyio.sleep(0.4)
        retry = await store.dequeue_rollout()
        assert retry is not None and retry.attempt.sequence_id == 2
        # keep the retry from timing out too on a slow machine: what is checked next is the old attempt's span
        await store.update_rollout(claimed.rollout_id, config=RolloutConfig(max_attempts=2))
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert isinstance(rollout, AttemptedRollout)
        assert rollout.status == "preparing" and rollout.attempt.attempt_id == retry.attempt.attempt_id
        old = (await store.query_attempts(claimed.rollout_id))[0]
        assert old.status == "timeout"

    async def test_debounce_delays_scans(self, make_store: MakeStore) -> None:
        store = await make_store(scan_debounce_seconds=3600.0)
        claimed = await _running_rollout(store, config=RolloutConfig(timeout_seconds=0.05))
        await anyio.sleep(0.15)
        attempt = await store.get_latest_attempt(claimed.rollout_id)
        assert attempt is not None and attempt.status == "preparing", "a debounced store must not scan every call"

    async def test_background_watchdog_times_out_idle_store(self, make_store: MakeStore) -> None:
        # Calls do not scan (debounce of an hour after the first): only the background watchdog can time out.
        store = await make_store(scan_debounce_seconds=3600.0, watchdog_interval=0.05)
        claimed = await _running_rollout(store, config=RolloutConfig(timeout_seconds=0.2))
        await anyio.sleep(0.5)

        async def timed_out() -> bool:
            attempt = await store.get_latest_attempt(claimed.rollout_id)
            return attempt is not None and attempt.status == "timeout"

        assert await _poll(timed_out, timeout=3.0), "the watchdog did not time out the attempt of an idle store"
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "failed"


# -- wait_for_rollouts ----------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreWaitForRollouts:
    @pytest.mark.parametrize("status", ["succeeded", "failed"])
    async def test_wakes_promptly_on_completion(self, store: LightningStore, status: AttemptStatus) -> None:
        claimed = await _running_rollout(store)
        result: Dict[str, Any] = {}

        async def wait() -> None:
            result["rollouts"] = await store.wait_for_rollouts(rollout_ids=[claimed.rollout_id], timeout=None)
            result["at"] = time.monotonic()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await anyio.sleep(0.1)
                updated_at = time.monotonic()
                await store.update_attempt(claimed.rollout_id, "latest", status=status)
        assert [r.rollout_id for r in result["rollouts"]] == [claimed.rollout_id]
        assert result["rollouts"][0].status == status
        assert result["at"] - updated_at < WAKE_BOUND

    async def test_wakes_on_update_rollout(self, store: LightningStore) -> None:
        queued = await store.enqueue_rollout("x")
        result: Dict[str, Any] = {}

        async def wait() -> None:
            result["rollouts"] = await store.wait_for_rollouts(rollout_ids=[queued.rollout_id], timeout=5.0)
            result["at"] = time.monotonic()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.sleep(0.1)
            updated_at = time.monotonic()
            await store.update_rollout(queued.rollout_id, status="cancelled")
        assert [r.status for r in result["rollouts"]] == ["cancelled"]
        assert result["at"] - updated_at < WAKE_BOUND

    async def test_timeout_returns_partial_in_input_order(self, store: LightningStore) -> None:
        a = await store.enqueue_rollout("a")
        b = await store.enqueue_rollout("b")
        c = await store.enqueue_rollout("c")
        await store.update_rollout(c.rollout_id, status="succeeded")
        await store.update_rollout(a.rollout_id, status="failed")
        start = time.monotonic()
        got = await store.wait_for_rollouts(rollout_ids=[c.rollout_id, b.rollout_id, a.rollout_id], timeout=0.1)
        assert _ids(got) == [c.rollout_id, a.rollout_id]
        assert time.monotonic() - start < 0.1 + WAKE_BOUND

    async def test_timeout_with_nothing_finished(self, store: LightningStore) -> None:
        queued = await store.enqueue_rollout("x")
        start = time.monotonic()
        assert await store.wait_for_rollouts(rollout_ids=[queued.rollout_id], timeout=0.1) == []
        assert time.monotonic() - start < 0.1 + WAKE_BOUND

    async def test_timeout_zero_returns_immediately(self, store: LightningStore) -> None:
        queued = await store.enqueue_rollout("x")
        done = await store.enqueue_rollout("y")
        await store.update_rollout(done.rollout_id, status="succeeded")
        start = time.monotonic()
        got = await store.wait_for_rollouts(rollout_ids=[queued.rollout_id, done.rollout_id], timeout=0)
        assert _ids(got) == [done.rollout_id]
        assert time.monotonic() - start < 0.5

    async def test_already_finished_and_unknown_ids(self, store: LightningStore) -> None:
        done = await store.enqueue_rollout("y")
        await store.update_rollout(done.rollout_id, status="succeeded")
        with anyio.fail_after(WAKE_BOUND):
            got = await store.wait_for_rollouts(rollout_ids=[done.rollout_id], timeout=None)
        assert _ids(got) == [done.rollout_id]
        with anyio.fail_after(WAKE_BOUND + 0.1):
            assert await store.wait_for_rollouts(rollout_ids=["ro-nonexistent"], timeout=0.1) == []
            mixed = await store.wait_for_rollouts(rollout_ids=["ro-nonexistent", done.rollout_id], timeout=0.1)
        assert _ids(mixed) == [done.rollout_id]

    async def test_cancellable(self, store: LightningStore) -> None:
        queued = await store.enqueue_rollout("x")
        start = time.monotonic()
        with anyio.move_on_after(0.1) as scope:
            await store.wait_for_rollouts(rollout_ids=[queued.rollout_id], timeout=None)
        assert scope.cancelled_caught
        assert time.monotonic() - start < 0.1 + WAKE_BOUND
        await store.update_rollout(queued.rollout_id, status="succeeded")
        with anyio.fail_after(WAKE_BOUND):
            got = await store.wait_for_rollouts(rollout_ids=[queued.rollout_id], timeout=None)
        assert _ids(got) == [queued.rollout_id]

    async def test_concurrent_waiters(self, store: LightningStore) -> None:
        rollouts = [await store.enqueue_rollout(i) for i in range(5)]
        ids = _ids(rollouts)
        results: Dict[int, List[str]] = {}

        async def wait(index: int) -> None:
            order = ids[index:] + ids[:index]
            results[index] = _ids(await store.wait_for_rollouts(rollout_ids=order, timeout=5.0))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for index in range(5):
                    tg.start_soon(wait, index)
                await anyio.sleep(0.1)
                for rollout in reversed(rollouts):
                    await store.update_rollout(rollout.rollout_id, status="succeeded")
        for index in range(5):
            assert results[index] == ids[index:] + ids[:index]


# -- concurrency ----------------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreConcurrency:
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
        claimed = await _running_rollout(store)
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


# -- validation and errors ------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreValidation:
    async def test_unknown_rollout_and_attempt(self, store: LightningStore) -> None:
        with pytest.raises(NotFoundError, match="Rollout nonexistent not found"):
            await store.start_attempt("nonexistent")
        with pytest.raises(NotFoundError, match="Rollout nonexistent not found"):
            await store.update_attempt("nonexistent", "latest", status="running")
        with pytest.raises(NotFoundError, match="nonexistent"):
            await store.update_rollout("nonexistent", status="running")
        queued = await store.enqueue_rollout("x")
        with pytest.raises(NotFoundError, match=f"No attempts found for rollout {queued.rollout_id}"):
            await store.update_attempt(queued.rollout_id, "at-whatever", status="running")
        with pytest.raises(NotFoundError, match=f"No attempts found for rollout {queued.rollout_id}"):
            await store.update_attempt(queued.rollout_id, "latest", status="running")
        claimed = await store.dequeue_rollout()
        assert claimed is not None
        with pytest.raises(NotFoundError, match=f"Attempt at-missing not found for rollout {claimed.rollout_id}"):
            await store.update_attempt(claimed.rollout_id, "at-missing", status="running")
        assert issubclass(NotFoundError, ValueError)

    async def test_errors_leave_data_intact(self, store: LightningStore) -> None:
        claimed = await _running_rollout(store)
        with pytest.raises(NotFoundError):
            await store.update_attempt(claimed.rollout_id, "at-missing", status="failed")
        with pytest.raises(ValueError):
            await store.update_attempt(claimed.rollout_id, "latest", status="exploded")  # type: ignore[arg-type]
        attempt = await store.get_latest_attempt(claimed.rollout_id)
        assert attempt is not None and attempt.status == "preparing"
        with pytest.raises(ValueError):
            await store.update_rollout(claimed.rollout_id, status="exploded")  # type: ignore[arg-type]
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "preparing"

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"limit": -2},
            {"offset": -1},
            {"sort_by": "no_such_field"},
            {"filter_logic": "xor"},
            {"sort_order": "sideways"},
        ],
    )
    async def test_bad_query_arguments(self, store: LightningStore, kwargs: Dict[str, Any]) -> None:
        await store.enqueue_rollout("x")
        with pytest.raises(InvalidRequestError):
            await store.query_rollouts(**kwargs)
        if "filter_logic" not in kwargs:
            with pytest.raises(InvalidRequestError):
                await store.query_attempts("ro-any", **kwargs)
            with pytest.raises(InvalidRequestError):
                await store.query_resources(**kwargs)
        with pytest.raises(InvalidRequestError):
            await store.query_spans("ro-any", **kwargs)
        with pytest.raises(InvalidRequestError):
            await store.query_workers(**kwargs)
        assert issubclass(InvalidRequestError, ValueError)


# -- closing --------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
class TestStoreClose:
    async def test_close_twice_and_use_after_close(self, make_store: MakeStore) -> None:
        store = await make_store()
        await store.enqueue_rollout("x")
        await store.close()
        await store.close()
        with pytest.raises(StoreClosedError):
            await store.enqueue_rollout("y")
        with pytest.raises(StoreClosedError):
            await store.query_rollouts()

    async def test_async_context_manager_closes(self, make_store: MakeStore) -> None:
        store = await make_store(watchdog_interval=0.05)
        async with store as entered:
            assert entered is store
            await store.enqueue_rollout("x")
        with pytest.raises(StoreClosedError):
            await store.dequeue_rollout()


# -- the state machine ----------------------------------------------------------------------------------------------


class TestStoreStateMachine:
    """Random operation sequences against the reference model (``AGL_STATEFUL_EXAMPLES``, ``AGL_STATEFUL_STEPS``,
    ``AGL_STATEFUL_BACKENDS`` tune it)."""

    # the parameter name is deliberately unusual: plugins' own fixtures (e.g. ``backend``) must not be shadowed
    @pytest.mark.parametrize("agl_stateful_backend", stateful_backends())
    def test_random_operation_sequences(self, store_factory: MakeStore, agl_stateful_backend: str) -> None:
        run_store_state_machine(store_factory, backend=agl_stateful_backend, settings_=stateful_settings())
