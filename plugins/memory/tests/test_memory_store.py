"""InMemoryLightningStore specifics: registration, the idle-store watchdog, eviction, threads and loops, closing."""

from __future__ import annotations

import threading
import time
from typing import Any, List

import agentlightning as agl
import anyio
import pytest
from agentlightning.store import open_store
from agentlightning.store.errors import InvalidRequestError, NotFoundError, SpansEvictedError, StoreClosedError
from agentlightning.types.core import EnqueueRolloutRequest, RolloutConfig
from agentlightning.types.tracer import Span
from agentlightning_memory import InMemoryLightningStore, estimate_span_size
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.anyio


def span_for(rollout_id: str, attempt_id: str, seq: int, **attributes: Any) -> Span:
    return Span.from_attributes(
        attributes=attributes or {"k": "v"},
        rollout_id=rollout_id,
        attempt_id=attempt_id,
        sequence_id=seq,
        span_id=f"{seq:016x}",
        trace_id="0" * 31 + "1",
    )


async def test_registered_by_name_url_and_export(anyio_backend: str) -> None:
    store = open_store("memory://", watchdog_interval=None)
    try:
        assert isinstance(store, InMemoryLightningStore)
        assert agl.InMemoryLightningStore is InMemoryLightningStore
        assert store.capabilities["thread_safe"] and not store.capabilities["zero_copy"]
    finally:
        await store.close()
    with pytest.raises(TypeError, match="bogus"):
        InMemoryLightningStore(bogus=1)
    with pytest.raises(ValueError, match="memory_budget_bytes"):
        InMemoryLightningStore(memory_budget_bytes=-1, watchdog_interval=None)


async def test_watchdog_times_out_attempts_of_an_idle_store(anyio_backend: str) -> None:
    store = InMemoryLightningStore(scan_debounce_seconds=3600, watchdog_interval=0.05)
    try:
        config = RolloutConfig(timeout_seconds=0.2, max_attempts=2, retry_condition=["timeout"])
        attempted = await store.start_rollout({"task": 1}, config=config, worker_id="w")
        # No store call from here on: only the watchdog thread can notice the timeout.
        deadline = time.monotonic() + 5
        state = None
        while time.monotonic() < deadline:
            await anyio.sleep(0.05)
            state = store.backend.run_sync(
                lambda tx: (
                    tx.get_rollout(attempted.rollout_id).status,
                    tx.get_attempts(attempted.rollout_id)[0].status,
                ),
                write=False,
            )
            if state != ("preparing", "preparing"):
                break
        assert state == ("requeuing", "timeout")
        worker = await store.get_worker_by_id("w")
        assert worker is not None and worker.status == "unknown"
        retried = await store.dequeue_rollout()
        assert retried is not None and retried.attempt.sequence_id == 2
    finally:
        await store.close()


async def test_wait_for_rollouts_wakes_on_a_watchdog_failure(anyio_backend: str) -> None:
    store = InMemoryLightningStore(scan_debounce_seconds=3600, watchdog_interval=0.05)
    try:
        attempted = await store.start_rollout("t", config=RolloutConfig(unresponsive_seconds=0.1))
        with anyio.fail_after(5):
            finished = await store.wait_for_rollouts(rollout_ids=[attempted.rollout_id], timeout=None)
        assert [(r.rollout_id, r.status) for r in finished] == [(attempted.rollout_id, "failed")]
    finally:
        await store.close()


async def test_spans_of_finished_rollouts_are_evicted_oldest_first(anyio_backend: str) -> None:
    store = InMemoryLightningStore(memory_budget_bytes=250, span_size_estimator=lambda s: 100, watchdog_interval=None)
    try:
        runs = [await store.start_rollout(i) for i in range(4)]
        for run in runs:
            assert await store.add_span(span_for(run.rollout_id, run.attempt.attempt_id, 1)) is not None
        stats = await store.statistics()
        assert stats["total_span_bytes"] == 400 and stats["evicted_rollouts"] == 0  # nothing finished: kept
        await store.update_attempt(runs[1].rollout_id, "latest", status="succeeded")
        await store.update_attempt(runs[0].rollout_id, "latest", status="failed")
        await store.update_attempt(runs[2].rollout_id, "latest", status="succeeded")
        # 400 > 250: finishing runs[1] evicts it; runs[0] then; at 200 the budget holds and runs[2] stays.
        for evicted in (runs[0], runs[1]):
            with pytest.raises(SpansEvictedError, match=f"Spans for rollout {evicted.rollout_id} have been evicted"):
                await store.query_spans(evicted.rollout_id)
        assert len(await store.query_spans(runs[2].rollout_id)) == 1
        assert len(await store.query_spans(runs[3].rollout_id)) == 1
        stats = await store.statistics()
        assert stats["total_span_bytes"] == 200
        assert stats["evicted_rollouts"] == 2 and stats["evicted_spans"] == 2
        assert stats["total_spans"] == 2 and stats["memory_budget_bytes"] == 250
    finally:
        await store.close()


async def test_eviction_keeps_memory_bounded_under_load(anyio_backend: str) -> None:
    budget = 200_000
    store = InMemoryLightningStore(memory_budget_bytes=budget, watchdog_interval=None)
    try:
        for i in range(60):
            run = await store.start_rollout(i)
            await store.add_many_spans(
                [span_for(run.rollout_id, run.attempt.attempt_id, s, payload="x" * 2000) for s in range(1, 11)]
            )
            await store.update_attempt(run.rollout_id, "latest", status="succeeded")
            assert (await store.statistics())["total_span_bytes"] <= budget
        stats = await store.statistics()
        assert stats["evicted_rollouts"] > 0 and stats["total_spans"] + stats["evicted_spans"] == 600
        assert stats["evicted_spans"] == 10 * stats["evicted_rollouts"]  # whole rollouts go, oldest first
        evicted = []
        for rollout in await store.query_rollouts():
            try:
                assert len(await store.query_spans(rollout.rollout_id)) == 10
            except SpansEvictedError:
                evicted.append(rollout.input)
        assert evicted == list(range(stats["evicted_rollouts"]))
    finally:
        await store.close()


def test_size_estimate_grows_with_attributes() -> None:
    small = span_for("r", "a", 1, k="v")
    big = span_for("r", "a", 1, k="v" * 5000, nested={"list": [1, 2.5, "x"], "flag": True})
    assert estimate_span_size(big) - estimate_span_size(small) >= 5000


async def test_errors_have_store_types(anyio_backend: str) -> None:
    store = InMemoryLightningStore(watchdog_interval=None)
    try:
        with pytest.raises(NotFoundError, match="Rollout ro-missing not found"):
            await store.update_attempt("ro-missing", "latest", status="failed")
        with pytest.raises(NotFoundError, match="does not exist"):
            await store.update_rollout("ro-missing", status="failed")
        with pytest.raises(InvalidRequestError, match="limit"):
            await store.query_rollouts(limit=-5)
        with pytest.raises(InvalidRequestError, match="Invalid sort_by: colour, allowed fields are: config, end_time"):
            await store.query_rollouts(sort_by="colour")  # upstream's wording
        with pytest.raises(InvalidRequestError, match="'queueing'"):
            await store.update_rollout((await store.enqueue_rollout(1)).rollout_id, status="queueing")
    finally:
        await store.close()


async def test_closed_store_refuses_calls_and_stops_its_thread(anyio_backend: str) -> None:
    store = InMemoryLightningStore(watchdog_interval=0.05)
    watchdog = store._watchdog
    assert watchdog is not None and watchdog.alive
    await store.close()
    await store.close()
    assert not watchdog.alive
    with pytest.raises(StoreClosedError):
        await store.enqueue_rollout(1)


def test_many_threads_and_event_loops_share_one_store() -> None:
    store = InMemoryLightningStore(watchdog_interval=None)
    n = 200
    ids: List[str] = []

    async def produce() -> None:
        created = await store.enqueue_many_rollouts([EnqueueRolloutRequest(input=i) for i in range(n)])
        ids.extend(r.rollout_id for r in created)

    anyio.run(produce)
    done: List[int] = []

    async def work(worker: str) -> None:
        count = 0
        while (claimed := await store.dequeue_rollout(worker_id=worker)) is not None:
            await store.add_many_spans([span_for(claimed.rollout_id, claimed.attempt.attempt_id, s) for s in (1, 2)])
            await store.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status="succeeded")
            count += 1
        done.append(count)

    finished: List[Any] = []

    async def wait() -> None:
        finished.extend(await store.wait_for_rollouts(rollout_ids=ids, timeout=30))

    waiter = threading.Thread(target=anyio.run, args=(wait,), kwargs={"backend": "trio"})
    waiter.start()
    threads = [
        threading.Thread(target=anyio.run, args=(work, f"w{i}"), kwargs={"backend": ("asyncio", "trio")[i % 2]})
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    waiter.join(30)
    assert sum(done) == n
    assert [r.rollout_id for r in finished] == ids

    async def check() -> None:
        stats = await store.statistics()
        assert stats["total_spans"] == 2 * n and stats["total_attempts"] == n
        await store.close()

    anyio.run(check)


async def test_status_queries_keep_insertion_order(anyio_backend: str) -> None:
    store = InMemoryLightningStore(watchdog_interval=None)
    try:
        first = await store.enqueue_rollout("a")
        second = await store.enqueue_rollout("b")
        await store.update_rollout(second.rollout_id, status="running")
        await store.update_rollout(first.rollout_id, status="running")
        found = await store.query_rollouts(status_in=["running"])
        assert [r.rollout_id for r in found] == [first.rollout_id, second.rollout_id]
    finally:
        await store.close()


async def test_waiting_without_a_watchdog_still_notices_timeouts(anyio_backend: str) -> None:
    store = InMemoryLightningStore(scan_debounce_seconds=0, watchdog_interval=None)
    try:
        attempted = await store.start_rollout("t", config=RolloutConfig(timeout_seconds=0.1))
        with anyio.fail_after(5):
            finished = await store.wait_for_rollouts(rollout_ids=[attempted.rollout_id])
        assert [r.status for r in finished] == ["failed"]
        assert (await store.get_latest_attempt(attempted.rollout_id)).status == "timeout"
    finally:
        await store.close()


async def test_url_options(anyio_backend: str) -> None:
    store = open_store("memory://?memory_budget_bytes=1000&watchdog_interval=none&scan_debounce_seconds=0")
    try:
        assert (await store.statistics())["memory_budget_bytes"] == 1000
        assert store._watchdog is None
    finally:
        await store.close()
    with pytest.raises(ValueError, match="colour"):
        open_store("memory://?colour=red")
    with pytest.raises(ValueError, match="memory_budget_bytes"):
        open_store("memory://?memory_budget_bytes=lots")
    with pytest.raises(ValueError, match="memory://"):
        open_store("memory://somewhere/else")


async def test_span_for_a_timed_out_attempt_does_not_revive_its_requeued_rollout(anyio_backend: str) -> None:
    store = InMemoryLightningStore(scan_debounce_seconds=0, watchdog_interval=None)
    try:
        config = RolloutConfig(timeout_seconds=0.05, max_attempts=2, retry_condition=["timeout"])
        attempted = await store.start_rollout("t", config=config)
        await anyio.sleep(0.1)
        await store.scan_unhealthy_rollouts()
        assert (await store.get_rollout_by_id(attempted.rollout_id)).status == "requeuing"
        await store.add_span(span_for(attempted.rollout_id, attempted.attempt.attempt_id, 1))
        rollout = await store.get_rollout_by_id(attempted.rollout_id)
        assert rollout.status == "requeuing" and rollout.attempt.status == "timeout"
        assert rollout.attempt.last_heartbeat_time is not None
        retried = await store.dequeue_rollout()
        assert retried is not None and retried.attempt.sequence_id == 2
    finally:
        await store.close()


async def test_shared_backends_are_polled_for_other_writers(anyio_backend: str) -> None:
    """A write the engine did not make (another process, here: straight into the backend) is seen by a waiter."""
    from agentlightning.store.engine import EngineLightningStore
    from agentlightning_memory import MemoryBackend

    class SharedBackend(MemoryBackend):
        shared_across_processes = True
        token = 0

        def change_token(self) -> Any:
            return self.token

    backend = SharedBackend()
    store = EngineLightningStore(backend, scan_debounce_seconds=0, watchdog_interval=None)
    try:
        attempted = await store.start_rollout("t")

        def finish_elsewhere() -> None:
            rollout = backend.run_sync(lambda tx: tx.get_rollout(attempted.rollout_id), write=False)
            import attrs

            backend.run_sync(lambda tx: tx.update_rollout(attrs.evolve(rollout, status="succeeded")), write=True)
            backend.token += 1

        threading.Timer(0.1, finish_elsewhere).start()
        with anyio.fail_after(5):
            finished = await store.wait_for_rollouts(rollout_ids=[attempted.rollout_id, "ro-unknown"])
        assert [r.rollout_id for r in finished] == [attempted.rollout_id]
    finally:
        await store.close()


async def test_waiting_for_unknown_ids_returns_at_once(anyio_backend: str) -> None:
    store = InMemoryLightningStore(watchdog_interval=None)
    try:
        with anyio.fail_after(5):
            assert await store.wait_for_rollouts(rollout_ids=["ro-000000000000"], timeout=None) == []
    finally:
        await store.close()


def test_upstream_constructor_options() -> None:
    import os

    from agentlightning.store.memory import InMemoryLightningStore as UpstreamPath

    assert UpstreamPath is InMemoryLightningStore
    store = InMemoryLightningStore(thread_safe=True, tracker="metrics", scan_debounce_seconds=0)
    assert store.tracker == "metrics" and store.capabilities["thread_safe"]
    with pytest.warns(DeprecationWarning, match="memory_budget_bytes"):
        by_bytes = InMemoryLightningStore(eviction_memory_threshold=10_000)
    assert by_bytes.backend.memory_budget_bytes == 10_000
    with pytest.warns(DeprecationWarning, match="memory_budget_bytes"):
        by_ratio = InMemoryLightningStore(eviction_memory_threshold=0.5)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert by_ratio.backend.memory_budget_bytes == int(total * 0.5)
    with pytest.warns(DeprecationWarning, match="safe_memory_threshold"):
        InMemoryLightningStore(safe_memory_threshold=0.1)
    with pytest.raises(TypeError, match="not both"):
        InMemoryLightningStore(memory_budget_bytes=1, eviction_memory_threshold=2)


async def test_backend_run_is_a_coroutine_function_tasks_can_start() -> None:
    """``run`` stays a native coroutine: task groups (and ``asyncio.create_task``) take it, and each call still lets
    the other tasks run before it returns."""
    import functools
    import inspect

    from agentlightning_memory.backend import MemoryBackend

    backend = MemoryBackend()
    assert inspect.iscoroutinefunction(backend.run)
    order: List[str] = []

    async def other() -> None:
        order.append("other")

    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(backend.run, lambda tx: order.append("run"), write=True))
        tg.start_soon(other)
    assert sorted(order) == ["other", "run"]
    assert await backend.run(lambda tx: tx.sequence_next("ro-1"), write=True) == 1


async def test_otel_spans_stored_inline_behave_as_the_engines(anyio_backend: str) -> None:
    # add_otel_span without a sequence id takes the store's inline path: the same results, errors, heartbeats and
    # scheduling point as the engine's general path (the sequence id given: the engine's path itself)
    from agentlightning.testing.store._support import make_otel_span

    store = InMemoryLightningStore(watchdog_interval=None)
    try:
        [rollout] = await store.enqueue_many_rollouts([EnqueueRolloutRequest(input={})])
        claimed = await store.dequeue_rollout()
        assert claimed is not None
        rid, aid = rollout.rollout_id, claimed.attempt.attempt_id
        otel = make_otel_span("a")
        first = await store.add_otel_span(rid, aid, otel)
        assert first is not None and first.sequence_id == 1 and first.name == "a"
        assert await store.add_otel_span(rid, aid, otel) is None  # a duplicate (its sequence id is still used)
        second = await store.add_otel_span(rid, aid, make_otel_span("b"))
        assert second is not None and second.sequence_id == 3
        given = await store.add_otel_span(rid, aid, make_otel_span("c"), sequence_id=10)
        assert given is not None and given.sequence_id == 10
        attempt = (await store.query_attempts(rid)).items[0]
        assert attempt.status == "running" and attempt.last_heartbeat_time is not None
        assert (await store.get_rollout_by_id(rid)).status == "running"  # type: ignore[union-attr]
        assert [s.name for s in (await store.query_spans(rid)).items] == ["a", "b", "c"]
        with pytest.raises(NotFoundError, match="ro-missing"):
            await store.add_otel_span("ro-missing", aid, make_otel_span("x"))
        with pytest.raises(NotFoundError, match="at-missing"):
            await store.add_otel_span(rid, "at-missing", make_otel_span("x"))

        turns: List[int] = []

        async def other() -> None:
            turns.append(1)

        async with anyio.create_task_group() as tg:
            tg.start_soon(other)
            # a scheduling point: the other task runs (at once on asyncio; trio picks a batch's order at random)
            for i in range(1 if anyio_backend == "asyncio" else 30):
                await store.add_otel_span(rid, aid, make_otel_span(f"d{i}"))
                if turns:
                    break
            assert turns == [1]
    finally:
        await store.close()
    with pytest.raises(StoreClosedError):
        await store.add_otel_span(rid, aid, make_otel_span("late"))


async def test_whole_span_list_reads_as_the_general_query(anyio_backend: str) -> None:
    # query_spans(rollout[, attempt]) without options takes a shorter path: the same page, order, errors and scan as
    # the general query (reached here by passing a default option explicitly)
    store = InMemoryLightningStore(watchdog_interval=None, scan_debounce_seconds=0, memory_budget_bytes=10**9)
    try:
        config = RolloutConfig(timeout_seconds=3600)
        [rollout, other] = await store.enqueue_many_rollouts(
            [EnqueueRolloutRequest(input={}, config=config), EnqueueRolloutRequest(input={})]
        )
        first = await store.dequeue_rollout()
        assert first is not None and first.rollout_id == rollout.rollout_id
        rid, a1 = rid_a1 = (rollout.rollout_id, first.attempt.attempt_id)
        await store.update_attempt(*rid_a1, status="failed")
        second = await store.start_attempt(rid)
        a2 = second.attempt.attempt_id
        # sequence ids out of insertion order, ties across attempts (kept in insertion order)
        for attempt_id, seq, name in [(a1, 3, "x"), (a2, 1, "y"), (a1, 1, "z"), (a2, 3, "w"), (a1, 2, "v")]:
            await store.add_span(span_for(rid, attempt_id, seq, name=name))
        for attempt_id in (None, a1, a2, "latest", "at-unknown"):
            fast = await store.query_spans(rid, attempt_id)
            general = await store.query_spans(rid, attempt_id, sort_by="sequence_id")
            assert fast.items == general.items
            assert (fast.limit, fast.offset, fast.total) == (general.limit, general.offset, general.total)
            assert fast.total == (
                0 if attempt_id == "at-unknown" else 5 if attempt_id is None else 2 + (attempt_id == a1)
            )
        assert [s.attributes["name"] for s in await store.query_spans(rid)] == ["y", "z", "v", "x", "w"]
        assert (await store.query_spans("ro-unknown")).items == []
        # a fresh copy each time: changing what was read changes nothing stored
        (await store.query_spans(rid)).items[0].attributes["name"] = "changed"
        assert (await store.query_spans(rid)).items[0].attributes["name"] == "y"
        # the timeout scan runs first, as on every query
        store._clock = lambda: time.time() + 7200  # type: ignore[method-assign]
        await store.query_spans(other.rollout_id)
        assert (await store.query_attempts(rid)).items[-1].status == "timeout"
        store.backend.run_sync(lambda tx: tx._evict(rid), write=True)  # type: ignore[attr-defined]
        for options in ({}, {"sort_by": "sequence_id"}):
            with pytest.raises(SpansEvictedError):
                await store.query_spans(rid, **options)
    finally:
        await store.close()
    with pytest.raises(StoreClosedError):
        await store.query_spans(rid)


_SPAN_OPS = st.tuples(
    st.just("span"), st.integers(0, 2), st.sampled_from(["latest", "latest", "first", "unknown"]), st.integers(0, 5)
)
_OPS = st.lists(
    st.one_of(
        _SPAN_OPS,
        _SPAN_OPS,
        _SPAN_OPS,
        st.tuples(st.just("attempt"), st.integers(0, 2), st.sampled_from(["running", "failed", "unresponsive"])),
        st.tuples(st.just("retry"), st.integers(0, 2)),
        st.tuples(st.just("dequeue")),
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(ops=_OPS, budget=st.sampled_from([None, 10**9]))
@example(
    ops=[("span", 0, "latest", i % 3) for i in range(4)] + [("attempt", 0, "failed"), ("span", 0, "first", 4)],
    budget=None,
)
@example(ops=[("span", 0, "latest", 0), ("span", 0, "latest", 1), ("span", 0, "latest", 1)], budget=10**9)
@example(ops=[("span", 0, "latest", 0), ("attempt", 0, "unresponsive"), ("span", 0, "latest", 1)], budget=None)
@example(ops=[("span", 0, "latest", 0), ("retry", 0), ("span", 0, "latest", 1), ("span", 0, "first", 2)], budget=None)
def test_usual_span_writes_equal_the_engines_transaction(ops: List[Any], budget: Any) -> None:
    # add_otel_span's one-call transaction for the usual span (MemoryBackend.add_next_span) leaves the store as the
    # engine's general transaction does, whatever the statuses, duplicates and unknown ids: the same answers, errors,
    # sequence ids, heartbeats, rollout and attempt states (two stores with the same ids and clocks, one without it)
    import asyncio
    import itertools

    from agentlightning.store import transitions as tr
    from agentlightning.testing.store._support import make_otel_span
    from agentlightning.types import to_dict

    otel = [make_otel_span(f"s{i}") for i in range(6)]

    async def run(fast: bool) -> List[Any]:
        ticks = itertools.count(1000.0)
        store = InMemoryLightningStore(watchdog_interval=None, memory_budget_bytes=budget, clock=lambda: next(ticks))
        if not fast:
            store._memory.add_next_span = lambda *args: None  # type: ignore[method-assign]
        ids = itertools.count()
        original = (tr.new_rollout_id, tr.new_attempt_id)
        tr.new_rollout_id = lambda: f"ro-{next(ids)}"  # type: ignore[assignment]
        tr.new_attempt_id = lambda: f"at-{next(ids)}"  # type: ignore[assignment]
        log: List[Any] = []
        try:
            rollouts = await store.enqueue_many_rollouts(
                [EnqueueRolloutRequest(input={}, config=RolloutConfig(max_attempts=3, retry_condition=["failed"]))] * 3
            )
            rids = [r.rollout_id for r in rollouts]
            for op in [("dequeue",)] * 2 + ops:  # two rollouts running, the third queued
                try:
                    if op[0] == "span":
                        rid = rids[op[1]]
                        attempts = (await store.query_attempts(rid)).items
                        aid = {
                            "latest": attempts[-1].attempt_id if attempts else "at-none",
                            "first": attempts[0].attempt_id if attempts else "at-none",
                            "unknown": "at-unknown",
                        }[op[2]]
                        stored = await store.add_otel_span(rid, aid, otel[op[3]])
                        log.append(None if stored is None else to_dict(stored))
                    elif op[0] == "attempt":
                        latest = await store.get_latest_attempt(rids[op[1]])
                        if latest is not None:
                            await store.update_attempt(rids[op[1]], latest.attempt_id, status=op[2])
                    elif op[0] == "retry":
                        await store.start_attempt(rids[op[1]])
                    else:
                        await store.dequeue_rollout()
                except Exception as exc:  # noqa: BLE001 - the errors are compared
                    log.append(repr(exc))
            for rid in rids:
                log.append(to_dict(await store.get_rollout_by_id(rid)))
                log.append([to_dict(a) for a in (await store.query_attempts(rid)).items])
                log.append([to_dict(s) for s in await store.query_spans(rid)])
            statistics = dict(await store.statistics())
            log.append({k: v for k, v in statistics.items() if k != "uptime"})
        finally:
            tr.new_rollout_id, tr.new_attempt_id = original  # type: ignore[assignment]
            await store.close()
        return log

    assert asyncio.run(run(True)) == asyncio.run(run(False))
