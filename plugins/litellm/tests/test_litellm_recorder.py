"""Span delivery: directly or over OTLP, with retries while the store is down; recording never raises."""

from __future__ import annotations

from typing import Any, Iterator, List

import anyio
import pytest
from agentlightning_litellm.capture import CallError, CallRecord, call_spans
from agentlightning_litellm.recorder import SpanRecorder
from agentlightning_memory import InMemoryLightningStore
from llmproxy_helpers import FlakyStore

pytestmark = pytest.mark.anyio


def _record(text: str, error: bool = False) -> CallRecord:
    record = CallRecord(kind="chat", request={"model": "m", "messages": [{"role": "user", "content": text}]})
    record.model, record.provider = "hosted_vllm/m", "hosted_vllm"
    if error:
        record.error = CallError(500, "api_error", "boom")
    else:
        record.response = {
            "id": f"id-{text}",
            "prompt_token_ids": [1, 2, 3],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "token_ids": [4, 5]}],
        }
    return record


async def _run(recorder: SpanRecorder, calls: List[tuple], timeout: float = 20.0) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(recorder.run)
        for rollout_id, attempt_id, text in calls:
            seq = await recorder.next_sequence_id(rollout_id, attempt_id)
            spans = call_spans(_record(text), rollout_id, attempt_id, seq if seq is not None else 0)
            recorder.submit(spans, sequence_known=seq is not None)
        assert await recorder.wait_idle(timeout)
        tg.cancel_scope.cancel()


async def test_spans_are_written_directly_to_a_store_without_otlp() -> None:
    store = InMemoryLightningStore()
    rollout = await store.start_rollout(input=1)
    recorder = SpanRecorder(store)
    assert recorder.otlp_endpoint is None
    ids = (rollout.rollout_id, rollout.attempt.attempt_id)
    await _run(recorder, [(*ids, "a"), (*ids, "b")])
    spans = await store.query_spans(*ids)
    assert [(s.name, s.sequence_id) for s in spans] == [
        ("litellm_request", 1), ("raw_gen_ai_request", 1), ("litellm_request", 2), ("raw_gen_ai_request", 2),
    ]  # fmt: skip
    assert spans[0].attributes["prompt_token_ids"] == [1, 2, 3] and spans[0].attributes["response_token_ids"] == [4, 5]
    assert recorder.delivered == 4 and recorder.dropped == 0


async def test_a_store_that_is_down_is_retried_and_sequence_ids_are_taken_late() -> None:
    store = FlakyStore(failures=3)  # the sequence id at call time fails, then two deliveries fail
    rollout = await store.start_rollout(input=1)
    recorder = SpanRecorder(store, retry_seconds=30.0)
    await _run(recorder, [(rollout.rollout_id, rollout.attempt.attempt_id, "late")])
    spans = await store.query_spans(rollout.rollout_id)
    assert [(s.name, s.sequence_id) for s in spans] == [("litellm_request", 1), ("raw_gen_ai_request", 1)]
    assert store.failures == 0 and recorder.dropped == 0


async def test_spans_a_dead_store_never_takes_are_dropped_without_raising() -> None:
    store = FlakyStore(failures=10**6)
    recorder = SpanRecorder(store, retry_seconds=0.3)
    await _run(recorder, [("ro-1", "at-1", "lost")])
    assert recorder.dropped == 2 and recorder.delivered == 0


@pytest.fixture
def served_store() -> Iterator[Any]:
    from agentlightning_server.server import LightningStoreServer

    store = InMemoryLightningStore()
    server = LightningStoreServer(store, "127.0.0.1", 0)
    server.start()
    try:
        yield store, server
    finally:
        server.stop()


async def test_spans_go_over_otlp_when_the_store_ingests_it(served_store: Any) -> None:
    from agentlightning_server.client import LightningStoreClient

    store, server = served_store
    client = LightningStoreClient(server.endpoint)
    try:
        rollout = await client.start_rollout(input=1)
        recorder = SpanRecorder(client)
        assert recorder.otlp_endpoint == server.endpoint + "/v1/traces"
        ids = (rollout.rollout_id, rollout.attempt.attempt_id)
        await _run(recorder, [(*ids, "x"), (*ids, "y")])
        spans = await store.query_spans(*ids)
    finally:
        await client.close()
    assert [(s.name, s.sequence_id) for s in spans] == [
        ("litellm_request", 1), ("raw_gen_ai_request", 1), ("litellm_request", 2), ("raw_gen_ai_request", 2),
    ]  # fmt: skip
    root, raw = spans[0], spans[1]
    assert raw.parent_id == root.span_id and raw.trace_id == root.trace_id
    assert root.attributes["prompt_token_ids"] == [1, 2, 3]
    assert root.attributes["gen_ai.completion.0.content"] == "x"
    assert root.attributes["http.response.status_code"] == 200
    assert root.resource.attributes["agentlightning.rollout_id"] == ids[0]


def test_error_calls_have_an_error_span_without_a_raw_child() -> None:
    spans = call_spans(_record("bad", error=True), "ro", "at", 7)
    assert len(spans) == 1
    (span,) = spans
    assert span.status.status_code == "ERROR" and span.status.description == "boom"
    assert span.attributes["error.type"] == "api_error" and span.attributes["http.response.status_code"] == 500
    assert span.events[0].attributes == {"exception.type": "api_error", "exception.message": "boom"}


async def _mixed_batch(store: Any, recorder: SpanRecorder) -> List[tuple]:
    """Calls of 8 rollouts plus one of a rollout the store never had, all queued before delivery starts (so that
    they travel in one batch), then delivered."""
    known = []
    for i in range(8):
        rollout = await store.start_rollout(input=i)
        known.append((rollout.rollout_id, rollout.attempt.attempt_id))
    calls = [(*ids, f"call-{i}") for i, ids in enumerate(known)]
    calls.insert(4, ("ro-stale", "at-stale", "stale"))
    for rollout_id, attempt_id, text in calls:
        recorder.submit(call_spans(_record(text), rollout_id, attempt_id, 1))
    async with anyio.create_task_group() as tg:
        tg.start_soon(recorder.run)
        assert await recorder.wait_idle(20.0), "a refused call must not hold up the queue (no retrying a refusal)"
        tg.cancel_scope.cancel()
    return known


async def _check_isolated(store: Any, recorder: SpanRecorder, known: List[tuple], caplog: Any) -> None:
    for rollout_id, attempt_id in known:
        spans = await store.query_spans(rollout_id, attempt_id)
        assert [s.name for s in spans] == ["litellm_request", "raw_gen_ai_request"], rollout_id
    assert recorder.delivered == 16 and recorder.dropped == 2
    assert recorder.refused == {("ro-stale", "at-stale"): 2}
    assert any("ro-stale" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


async def test_a_call_of_an_unknown_rollout_costs_no_other_call_its_spans(caplog: Any) -> None:
    store = InMemoryLightningStore()
    recorder = SpanRecorder(store, retry_seconds=60.0)
    known = await _mixed_batch(store, recorder)
    await _check_isolated(store, recorder, known, caplog)


@pytest.mark.parametrize("use_otlp", [True, False], ids=["otlp", "client"])
async def test_a_call_of_an_unknown_rollout_costs_no_other_call_its_spans_remotely(
    served_store: Any, caplog: Any, use_otlp: bool
) -> None:
    from agentlightning_server.client import LightningStoreClient

    store, server = served_store
    client = LightningStoreClient(server.endpoint)
    try:
        recorder = SpanRecorder(client, use_otlp=use_otlp, retry_seconds=60.0)
        assert (recorder.otlp_endpoint is not None) == use_otlp
        known = await _mixed_batch(client, recorder)
        await _check_isolated(store, recorder, known, caplog)
    finally:
        await client.close()


async def test_otlp_batches_fail_over_to_another_store_server(tmp_path: Any) -> None:
    """A store client over several servers (the first one down): the spans go over OTLP to a live server, none
    dropped, rather than to whichever server the recorder was first given."""
    from agentlightning_server.client import LightningStoreClient
    from agentlightning_server.serve import free_port
    from agentlightning_server.server import LightningStoreServer
    from agentlightning_sqlite import SqliteLightningStore

    db = str(tmp_path / "run.db")
    servers = [LightningStoreServer(SqliteLightningStore(db, watchdog_interval=None), "127.0.0.1", 0) for _ in range(2)]
    for server in servers:
        server.start()
    dead = f"http://127.0.0.1:{free_port()}"
    client = LightningStoreClient([dead] + [s.endpoint for s in servers], unavailable_seconds=5)
    try:
        recorder = SpanRecorder(client, retry_seconds=3.0)  # made first: the dead server is the next in turn
        assert recorder.otlp_endpoint is not None
        rollout = await client.start_rollout(input=1)
        ids = (rollout.rollout_id, rollout.attempt.attempt_id)
        await _run(recorder, [(*ids, text) for text in "abcdef"])
        spans = await client.query_spans(*ids)
    finally:
        await client.close()
        for server in servers:
            server.stop()
    assert recorder.dropped == 0 and recorder.delivered == 12
    assert len(spans) == 12 and len({s.span_id for s in spans}) == 12
