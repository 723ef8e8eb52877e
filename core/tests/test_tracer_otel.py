"""OtelTracer: spans reach the store in batches, all of them before the trace context exits, per task."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import anyio
import anyio.to_thread
import pytest
from agentlightning.emitter import emit_message, emit_reward, get_reward_value, reward
from agentlightning.tracer.otel import OtelTracer
from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api

RecordingStore = Any  # conftest.RecordingStore: records the two span methods the tracer calls

pytestmark = pytest.mark.anyio


def names(spans: Any) -> list:
    return [s.name for s in spans]


def test_create_span_and_operation_context(otel_tracer: OtelTracer) -> None:
    core = otel_tracer.create_span("custom", {"a": 1, "b": {"c": 2}}, timestamp=1_700_000_000.5, status="ERROR")
    assert core.start_time == core.end_time == pytest.approx(1_700_000_000.5)
    assert core.status.status_code == "ERROR"
    assert core.attributes == {"a": 1, "b": '{"c": 2}'}
    with pytest.raises(KeyError), otel_tracer.operation_context("op", {"x": 1}) as ctx:
        ctx.record_attributes({"y": [1, 2]})
        raise KeyError("k")
    span = ctx.get_recorded_span()
    assert span.status.status_code == "ERROR" and "k" in (span.status.description or "")
    assert span.attributes == {"x": 1, "y": (1, 2)} or span.attributes == {"x": 1, "y": [1, 2]}


async def test_without_store_spans_are_kept_locally(otel_tracer: OtelTracer) -> None:
    async with otel_tracer.trace_context("dev") as tracer:
        with tracer.start_as_current_span("outer"):
            emit_message("inside")
    spans = otel_tracer.get_last_trace()
    assert names(spans) == ["agentlightning.message", "outer"]
    assert [s.sequence_id for s in spans] == [0, 1]
    assert {s.rollout_id for s in spans} == {"rollout-dummy"}
    assert spans[0].parent_id == spans[1].span_id


async def test_argument_checks(otel_tracer: OtelTracer) -> None:
    with pytest.raises(ValueError, match="both"):
        async with otel_tracer.trace_context(rollout_id="r"):
            pass
    with pytest.raises(ValueError, match="needs a store"):
        async with otel_tracer.trace_context(rollout_id="r", attempt_id="a"):
            pass
    with pytest.raises(RuntimeError, match="init_worker"):
        async with OtelTracer().trace_context():
            pass
    with pytest.raises(ValueError, match="batch_size"):
        OtelTracer(batch_size=0)


async def test_spans_reach_the_store_in_batches_before_exit(recording_store: RecordingStore) -> None:
    tracer = OtelTracer(batch_size=8, flush_interval=0.01)
    tracer.init_worker(0, recording_store)  # type: ignore[arg-type]
    try:
        async with tracer.trace_context(rollout_id="ro-1", attempt_id="at-1") as otel:
            for i in range(30):
                with otel.start_as_current_span(f"step-{i}"):
                    pass
                if i % 10 == 0:
                    await anyio.sleep(0.03)  # let the flusher run mid-trace
            emit_reward(1.0)
        # everything is in the store when the context has exited
        assert len(recording_store.spans) == 31
        assert names(recording_store.spans)[:30] == [f"step-{i}" for i in range(30)]
        assert [s.sequence_id for s in recording_store.spans] == list(range(31))
        assert {(s.rollout_id, s.attempt_id) for s in recording_store.spans} == {("ro-1", "at-1")}
        adds = [c for c in recording_store.calls if c[0] == "add_many_spans"]
        assert len(adds) >= 2  # batched, not one call per span and not one call at the end only
        assert all(c[1] == [("ro-1", "at-1")] * len(c[1]) for c in recording_store.calls if c[0].startswith("get_many"))
        # the store ran on the event loop's thread, not on the flusher's
        assert set(recording_store.threads) == {threading.current_thread().name}
        assert tracer.get_last_trace() == recording_store.spans
    finally:
        tracer.teardown_worker(0)


@pytest.mark.parametrize("over_the_wire", [True, False])
async def test_a_store_served_over_the_wire_gets_the_ids_on_the_span_resource_too(
    recording_store: RecordingStore, over_the_wire: bool
) -> None:
    store = recording_store
    store.capabilities = {"otlp_traces": over_the_wire}  # type: ignore[attr-defined]  # as the HTTP client says
    tracer = OtelTracer()
    tracer.init_worker(0, store)  # type: ignore[arg-type]
    try:
        async with tracer.trace_context(rollout_id="ro-1", attempt_id="at-1") as otel:
            with otel.start_as_current_span("one"), otel.start_as_current_span("two"):
                pass
    finally:
        tracer.teardown_worker(0)
    ids = {"agentlightning.rollout_id": "ro-1", "agentlightning.attempt_id": "at-1"}
    assert len(store.spans) == 2
    for span in store.spans:
        assert (ids.items() <= span.resource.attributes.items()) is over_the_wire
        assert "service.name" in span.resource.attributes  # the provider's own resource is kept


async def test_store_errors_are_tolerated_and_spans_kept(failing_store: RecordingStore) -> None:
    store = failing_store
    tracer = OtelTracer(flush_interval=0.01)
    tracer.init_worker(0, store)  # type: ignore[arg-type]
    try:
        async with tracer.trace_context(rollout_id="r", attempt_id="a"):
            emit_message("one")
            emit_message("two")
        kept = tracer.get_last_trace()
        assert names(kept) == ["agentlightning.message"] * 2
        assert {s.rollout_id for s in kept} == {"r"}
    finally:
        tracer.teardown_worker(0)


async def test_store_given_to_trace_context_wins(otel_tracer: OtelTracer, recording_store: RecordingStore) -> None:
    async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):  # type: ignore[arg-type]
        emit_message("m")
    assert names(recording_store.spans) == ["agentlightning.message"]


async def test_concurrent_rollouts_do_not_mix(otel_tracer: OtelTracer, recording_store: RecordingStore) -> None:
    async def rollout(i: int) -> None:
        async with otel_tracer.trace_context(store=recording_store, rollout_id=f"r{i}", attempt_id="a") as otel:  # type: ignore[arg-type]
            for step in range(5):
                with otel.start_as_current_span(f"r{i}-step{step}"):
                    await anyio.sleep(0.001)
                emit_message(f"r{i}")

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(rollout, i)
    assert len(recording_store.spans) == 60
    for span in recording_store.spans:
        owner = span.name.split("-")[0] if span.name.startswith("r") else span.attributes["agentlightning.message.body"]
        assert span.rollout_id == owner


async def test_spans_outside_a_trace_context_are_ignored(
    otel_tracer: OtelTracer, recording_store: RecordingStore
) -> None:
    otel = otel_tracer.get_otel_tracer()
    with otel.start_as_current_span("before"):
        pass
    async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):  # type: ignore[arg-type]
        with otel.start_as_current_span("inside"):
            pass
    with otel.start_as_current_span("after"):
        pass
    assert names(recording_store.spans) == ["inside"]


async def test_spans_from_worker_threads_follow_their_parent(
    otel_tracer: OtelTracer, recording_store: RecordingStore
) -> None:
    otel = otel_tracer.get_otel_tracer()

    def in_copied_context() -> None:
        with otel.start_as_current_span("copied-context"):
            pass

    async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):  # type: ignore[arg-type]
        await anyio.to_thread.run_sync(in_copied_context)
        with otel.start_as_current_span("parent") as parent:
            ctx = trace_api.set_span_in_context(parent)

            def plain_thread() -> None:  # no contextvars copied: found through the parent span
                token = otel_context.attach(ctx)
                try:
                    with otel.start_as_current_span("raw-thread-child"):
                        pass
                finally:
                    otel_context.detach(token)

            thread = threading.Thread(target=plain_thread)
            thread.start()
            thread.join()
    assert sorted(names(recording_store.spans)) == ["copied-context", "parent", "raw-thread-child"]


async def test_trace_contexts_do_not_nest(otel_tracer: OtelTracer) -> None:
    async with otel_tracer.trace_context():
        with pytest.raises(ValueError, match="already set"):
            async with otel_tracer.trace_context():
                pass


async def test_exceptions_propagate_and_spans_still_flush(
    otel_tracer: OtelTracer, recording_store: RecordingStore
) -> None:
    with pytest.raises(ZeroDivisionError):
        async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):  # type: ignore[arg-type]
            emit_message("before the error")
            1 / 0  # noqa: B018
    assert names(recording_store.spans) == ["agentlightning.message"]


async def test_cancelled_trace_context_still_flushes(otel_tracer: OtelTracer, recording_store: RecordingStore) -> None:
    with anyio.move_on_after(0.05):
        async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):  # type: ignore[arg-type]
            emit_message("then cancelled")
            await anyio.sleep(10)
    assert names(recording_store.spans) == ["agentlightning.message"]


async def test_reward_via_decorator_and_emit(otel_tracer: OtelTracer) -> None:
    @reward
    def grade() -> float:
        return 0.75

    async with otel_tracer.trace_context():
        grade()
    spans = otel_tracer.get_last_trace()
    assert len(spans) == 1 and get_reward_value(spans[0]) == 0.75
    async with otel_tracer.trace_context():
        emit_reward({"acc": 1.0, "len": 0.1}, primary_key="acc")
    spans = otel_tracer.get_last_trace()
    assert len(spans) == 1 and get_reward_value(spans[0]) == 1.0


async def test_teardown_disables_the_processor(recording_store: RecordingStore) -> None:
    tracer = OtelTracer()
    tracer.init_worker(0, recording_store)  # type: ignore[arg-type]
    processor = tracer.processor
    assert processor is not None and tracer._flusher.running
    tracer.teardown_worker(0)
    assert not processor.enabled and not tracer._flusher.running
    with pytest.raises(RuntimeError, match="init_worker"):
        async with tracer.trace_context():
            pass
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(processor)
    tracer.init_worker(0, recording_store)  # type: ignore[arg-type]
    try:
        async with tracer.trace_context(rollout_id="r", attempt_id="a"):
            emit_message("again")
        assert names(recording_store.spans) == ["agentlightning.message"]
    finally:
        tracer.teardown_worker(0)


async def test_memory_store_end_to_end(otel_tracer: OtelTracer, memory_store: Any) -> None:
    rollout = await memory_store.start_rollout({"q": 1})
    async with otel_tracer.trace_context(
        store=memory_store, rollout_id=rollout.rollout_id, attempt_id=rollout.attempt.attempt_id
    ) as otel:
        with otel.start_as_current_span("agent"):
            emit_reward(0.5)
    spans = list(await memory_store.query_spans(rollout.rollout_id))
    assert sorted(names(spans)) == ["agent", "agentlightning.annotation"]
    assert sorted(s.sequence_id for s in spans) == [1, 2]
    await memory_store.close()


async def test_plain_threads_join_the_only_open_trace(otel_tracer: OtelTracer, recording_store: RecordingStore) -> None:
    otel = otel_tracer.get_otel_tracer()

    def worker(i: int) -> None:  # no contextvars, no parent span: like a framework's own thread pool
        with otel.start_as_current_span(f"thread-{i}"):
            pass
        emit_message(f"from thread {i}")

    async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):  # type: ignore[arg-type]
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(names(recording_store.spans)) == sorted(
        [f"thread-{i}" for i in range(10)] + ["agentlightning.message"] * 10
    )


async def test_plain_threads_are_ambiguous_with_two_open_traces(
    otel_tracer: OtelTracer, recording_store: RecordingStore
) -> None:
    from agentlightning.emitter import NoActiveTracerWarning

    started, release = anyio.Event(), anyio.Event()

    async def other_rollout() -> None:
        async with otel_tracer.trace_context(store=recording_store, rollout_id="r2", attempt_id="a"):  # type: ignore[arg-type]
            started.set()
            await release.wait()

    def worker() -> None:
        emit_message("whose?")

    async with anyio.create_task_group() as tg:
        tg.start_soon(other_rollout)
        await started.wait()
        async with otel_tracer.trace_context(store=recording_store, rollout_id="r1", attempt_id="a"):  # type: ignore[arg-type]
            thread = threading.Thread(target=worker)
            with pytest.warns(NoActiveTracerWarning):
                thread.start()
                thread.join()
        release.set()
    assert recording_store.spans == []


async def test_sequential_contexts_reset_the_last_trace(otel_tracer: OtelTracer) -> None:
    async with otel_tracer.trace_context():
        emit_message("first")
        emit_message("second")
    assert len(otel_tracer.get_last_trace()) == 2
    async with otel_tracer.trace_context():
        assert otel_tracer.get_last_trace() == []
        emit_message("third")
    assert [s.attributes["agentlightning.message.body"] for s in otel_tracer.get_last_trace()] == ["third"]


async def test_spans_ending_after_exit_are_not_part_of_the_trace(
    otel_tracer: OtelTracer, recording_store: RecordingStore
) -> None:
    otel = otel_tracer.get_otel_tracer()
    async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):  # type: ignore[arg-type]
        late = otel.start_span("still open at exit")
        with otel.start_as_current_span("done"):
            pass
    late.end()
    assert names(recording_store.spans) == ["done"]
    assert otel_tracer.processor is not None and otel_tracer.processor._owner == {}
