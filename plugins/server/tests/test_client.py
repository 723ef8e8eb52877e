"""LightningStoreClient: same exception types as a local store, retries, idempotent writes, waits, pickling."""

from __future__ import annotations

import logging
import pickle
import threading
import time
from typing import Any, Dict, Iterator, List

import anyio
import pytest
from agentlightning.store.errors import InvalidRequestError, NotFoundError, StoreUnavailableError
from agentlightning_server import LightningStoreClient, LightningStoreServer
from agentlightning_server.app import create_app
from agentlightning_server.client import UNAVAILABLE_SECONDS_ENV
from agentlightning_server.serve import free_port

pytestmark = pytest.mark.anyio


def _memory() -> Any:
    from agentlightning_memory import InMemoryLightningStore

    return InMemoryLightningStore(watchdog_interval=None)


async def test_errors_have_the_local_types(memory_client: LightningStoreClient) -> None:
    local = _memory()
    for store in (local, memory_client):
        with pytest.raises(NotFoundError, match="ro-missing"):
            await store.update_rollout("ro-missing", status="running")
        with pytest.raises(InvalidRequestError):
            await store.query_rollouts(limit=-5)
        queued = await store.enqueue_rollout("x")
        with pytest.raises(ValueError):
            await store.update_rollout(queued.rollout_id, status="exploded")
    for bad in (None, [1, 2]):
        for store in (local, memory_client):
            with pytest.raises(TypeError, match="heartbeat_stats must be a mapping"):
                await store.update_worker("w", heartbeat_stats=bad)
    await local.close()


def test_the_wait_for_an_unreachable_server_defaults_to_two_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UNAVAILABLE_SECONDS_ENV, raising=False)
    assert LightningStoreClient("http://127.0.0.1:9").unavailable_seconds == 120.0
    monkeypatch.setenv(UNAVAILABLE_SECONDS_ENV, "7.5")
    client = LightningStoreClient("http://127.0.0.1:9")
    assert client.unavailable_seconds == 7.5
    assert pickle.loads(pickle.dumps(client)).unavailable_seconds == 7.5  # runner processes get the same budget
    monkeypatch.setenv(UNAVAILABLE_SECONDS_ENV, "soon")
    with pytest.raises(ValueError, match="AGL_STORE_UNAVAILABLE_SECONDS must be a number"):
        LightningStoreClient("http://127.0.0.1:9")


class _Flag(logging.Handler):
    """Sets ``event`` when a record containing ``text`` is logged."""

    def __init__(self, event: threading.Event, text: str) -> None:
        super().__init__()
        self.event, self.text, self.messages = event, text, []  # type: ignore[var-annotated]

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if self.text in message:
            self.event.set()


async def test_a_request_waits_for_a_server_that_restarts_on_the_same_port() -> None:
    store = _memory()
    server = LightningStoreServer(store, port=free_port()).start()
    port = server.port
    client = LightningStoreClient(server.endpoint, retry_delays=(0.01, 0.02), unavailable_seconds=60)
    waiting = threading.Event()
    flag = _Flag(waiting, "waiting up to 60 s for it to come back")
    log = logging.getLogger("agentlightning_server.client")
    log.addHandler(flag)
    restarted: List[Any] = []
    try:
        rollout = await client.enqueue_rollout({"n": 1})
        server.stop()

        async def restart_once_the_client_waits() -> None:
            assert await anyio.to_thread.run_sync(waiting.wait, 30), "the client never said it was waiting"
            restarted.append(LightningStoreServer(store, port=port).start())

        async with anyio.create_task_group() as tg:
            tg.start_soon(restart_once_the_client_waits)
            fetched = await client.get_rollout_by_id(rollout.rollout_id)
        assert fetched is not None and fetched.rollout_id == rollout.rollout_id
        assert any("is back after" in m for m in flag.messages), flag.messages
    finally:
        log.removeHandler(flag)
        await client.close()
        for again in restarted:
            again.stop()
        await store.close()


async def test_unreachable_server_raises_store_unavailable() -> None:
    client = LightningStoreClient(
        "http://127.0.0.1:9", retry_delays=(0.01, 0.01), connect_timeout=1.0, unavailable_seconds=0.2
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=r"unreachable for 0 s \(\d+ tries, unavailable_seconds=0.2\)"):
        await client.get_rollout_by_id("ro-x")
    with pytest.raises(ConnectionError):
        await client.enqueue_rollout("x")
    assert time.monotonic() - started < 20
    await client.close()


class _Flaky:
    """ASGI wrapper: the first ``fail`` requests of each kind run the real app, then answer 500 as if the reply
    were lost, so a retry arrives for a write that already happened."""

    def __init__(self, app: Any, fail: int) -> None:
        self.app, self.fail, self.seen = app, fail, 0
        self.paths: List[str] = []

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.paths.append(scope["path"])
        if self.seen < self.fail:
            self.seen += 1

            async def swallow(message: Any) -> None:
                pass

            await self.app(scope, receive, swallow)
            await send({"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"lost"})
            return
        await self.app(scope, receive, send)


@pytest.fixture
def flaky() -> Iterator[tuple[LightningStoreServer, _Flaky, Any]]:
    store = _memory()
    wrapper = _Flaky(create_app(store), fail=0)
    with LightningStoreServer(None, port=0, app=wrapper) as server:  # type: ignore[arg-type]
        yield server, wrapper, store


async def test_retried_writes_apply_once(flaky: Any) -> None:
    server, wrapper, store = flaky
    client = LightningStoreClient(server.endpoint, retry_delays=(0.01, 0.01, 0.01))
    try:
        wrapper.seen, wrapper.fail = 0, 2
        rollout = await client.enqueue_rollout("once")
        assert wrapper.paths.count("/v1/agl/queues/rollouts/enqueue") == 3
        wrapper.seen, wrapper.fail = 0, 1
        started = await client.start_rollout("started-once")
        wrapper.seen, wrapper.fail = 0, 1
        claimed = await client.dequeue_rollout(worker_id="w")
        assert claimed is not None and claimed.rollout_id == rollout.rollout_id
        wrapper.seen, wrapper.fail = 0, 1
        resources = await client.add_resources({})
        wrapper.seen, wrapper.fail = 0, 1
        assert await client.get_next_span_sequence_id(started.rollout_id, started.attempt.attempt_id) == 1
        stats = await client.statistics()
        assert stats["total_rollouts"] == 2 and stats["total_attempts"] == 2 and stats["total_resources"] == 1
        assert await client.get_next_span_sequence_id(started.rollout_id, started.attempt.attempt_id) == 2
        assert (await client.get_latest_resources()).resources_id == resources.resources_id  # type: ignore[union-attr]
        wrapper.seen, wrapper.fail = 0, 10  # more failures than retries: the 500 surfaces
        with pytest.raises(Exception, match="HTTP 500"):
            await client.statistics()
    finally:
        await client.close()


async def test_long_waits_are_chunked(memory_client: LightningStoreClient) -> None:
    client = LightningStoreClient(memory_client.url, wait_chunk_seconds=0.2)
    claimed = await client.start_rollout("slow")

    async def finish_later() -> None:
        await anyio.sleep(0.7)
        await client.update_attempt(claimed.rollout_id, "latest", status="succeeded")

    async with anyio.create_task_group() as tg:
        tg.start_soon(finish_later)
        started = time.monotonic()
        done = await client.wait_for_rollouts(rollout_ids=[claimed.rollout_id], timeout=30)
        elapsed = time.monotonic() - started
    assert [r.rollout_id for r in done] == [claimed.rollout_id] and done[0].status == "succeeded"
    assert elapsed < 10
    never = await client.start_rollout("never finished")
    started = time.monotonic()
    assert await client.wait_for_rollouts(rollout_ids=[never.rollout_id], timeout=0.5) == []
    assert time.monotonic() - started >= 0.5  # the whole timeout, across chunks
    await client.close()


async def test_each_wait_request_names_only_the_rollouts_not_yet_seen_finished(
    memory_client: LightningStoreClient,
) -> None:
    client = LightningStoreClient(memory_client.url, wait_chunk_seconds=0.2)
    first, second, third = [await client.start_rollout(name) for name in ("first", "second", "third")]
    await client.update_attempt(first.rollout_id, "latest", status="succeeded")
    asked: List[List[str]] = []
    call = client._call

    async def recording_call(route: Any, *args: Any, **kwargs: Any) -> Any:
        if "rollout_ids" in kwargs:
            asked.append(list(kwargs["rollout_ids"]))
        return await call(route, *args, **kwargs)

    client._call = recording_call  # type: ignore[method-assign]

    async def finish_later() -> None:
        await anyio.sleep(0.5)
        await client.update_attempt(second.rollout_id, "latest", status="failed")
        await anyio.sleep(0.5)
        await client.update_attempt(third.rollout_id, "latest", status="succeeded")

    ids = [third.rollout_id, first.rollout_id, second.rollout_id, first.rollout_id]
    async with anyio.create_task_group() as tg:
        tg.start_soon(finish_later)
        done = await client.wait_for_rollouts(rollout_ids=ids, timeout=30)
    assert [r.rollout_id for r in done] == ids  # the caller's order, repeats kept, as a local store answers
    assert [r.status for r in done] == ["succeeded", "succeeded", "failed", "succeeded"]
    assert asked[0] == [third.rollout_id, first.rollout_id, second.rollout_id]
    assert all(first.rollout_id not in names for names in asked[1:])  # seen finished: never asked again
    assert asked[-1] == [third.rollout_id]
    assert len(asked) >= 4  # several chunks: the narrowing happened across requests
    await client.close()


async def test_a_wait_naming_ids_the_store_does_not_know_ends_as_a_local_stores(
    memory_client: LightningStoreClient,
) -> None:
    """A local store needs no waiting for ids it does not know (they are not returned); the client's chunked wait
    must end the same way, not ask again and again until its deadline."""
    local = _memory()
    client = LightningStoreClient(memory_client.url, wait_chunk_seconds=2.0)
    waits = 0
    call = client._call

    async def counting_call(route: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal waits
        waits += "rollout_ids" in kwargs
        return await call(route, *args, **kwargs)

    client._call = counting_call  # type: ignore[method-assign]
    answers = []
    for store in (local, client):
        done = await store.start_rollout("done")
        await store.update_attempt(done.rollout_id, "latest", status="succeeded")
        started = time.monotonic()
        with anyio.fail_after(20):
            finished = await store.wait_for_rollouts(rollout_ids=["ro-unknown", done.rollout_id], timeout=None)
        answers.append(([r.rollout_id for r in finished] == [done.rollout_id], time.monotonic() - started < 2.0))
    assert answers == [(True, True), (True, True)]
    assert waits == 1  # one wait request, answered at once; no second one

    running = await client.start_rollout("running")  # known and not finished: still waited on, to the deadline
    started = time.monotonic()
    assert await client.wait_for_rollouts(rollout_ids=["ro-unknown", running.rollout_id], timeout=0.6) == []
    assert time.monotonic() - started >= 0.6
    await client.close()
    await local.close()


async def test_answered_turns_true_with_the_first_answer_of_a_server() -> None:
    server = LightningStoreServer(_memory(), port=free_port()).start()
    try:
        client = LightningStoreClient(server.endpoint, unavailable_seconds=5)
        assert client.answered is False
        with pytest.raises(NotFoundError):  # an error answer is still an answer
            await client.update_rollout("ro-missing", status="running")
        assert client.answered is True
        assert pickle.loads(pickle.dumps(client)).answered is False  # each copy speaks for itself
        await client.close()
    finally:
        server.stop()
    unreachable = LightningStoreClient(f"http://127.0.0.1:{free_port()}", unavailable_seconds=0, retry_delays=())
    with pytest.raises(StoreUnavailableError):
        await unreachable.get_latest_resources()
    assert unreachable.answered is False


async def test_pickled_client_keeps_settings_only(memory_client: LightningStoreClient) -> None:
    await memory_client.enqueue_rollout("x")
    copy = pickle.loads(pickle.dumps(memory_client))
    assert copy.url == memory_client.url and copy.retry_delays == memory_client.retry_delays
    assert (await copy.statistics())["total_rollouts"] == 1
    await copy.close()


async def test_statistics_are_the_served_stores_as_the_server_reports_them() -> None:
    store = _memory()
    server = LightningStoreServer(store, port=0)
    await server.start()
    client = server.client()
    try:
        await client.enqueue_rollout("x")
        served = dict(await store.statistics())
        through_client = dict(await client.statistics())
        assert through_client["name"] == "InMemoryLightningStore" and "remote_name" not in through_client
        assert {k: v for k, v in through_client.items() if k != "uptime"} == {
            k: v for k, v in served.items() if k != "uptime"
        }
    finally:
        await client.close()
        await server.stop()


async def test_batched_spans_and_sequence_ids(memory_client: LightningStoreClient) -> None:
    from agentlightning.testing.store_suite import make_span

    claimed = await memory_client.start_rollout("spans")
    rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
    ids = await memory_client.get_many_span_sequence_ids([(rid, aid)] * 3)
    assert list(ids) == [1, 2, 3]
    spans = [make_span(rid, aid, i) for i in ids]
    stored = await memory_client.add_many_spans(spans)
    assert [s.span_id for s in stored] == [s.span_id for s in spans]
    assert await memory_client.add_many_spans(spans[:1]) == []
    assert await memory_client.add_many_spans([]) == []
    assert (await memory_client.query_spans(rid)).total == 3


async def test_otel_span_through_client(memory_client: LightningStoreClient) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    claimed = await memory_client.start_rollout("otel")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("op") as otel_span:
        otel_span.set_attribute("k", "v")
    stored = await memory_client.add_otel_span(claimed.rollout_id, claimed.attempt.attempt_id, otel_span)
    assert stored is not None and stored.sequence_id == 1 and stored.attributes == {"k": "v"}
    assert memory_client.otlp_traces_endpoint().endswith("/v1/traces")


def _otel_spans(count: int) -> List[Any]:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    spans = []
    for i in range(count):
        with tracer.start_as_current_span(f"op-{i}", attributes={"i": i, "xs": (1, 2)}) as otel_span:
            pass
        spans.append(otel_span)
    return spans


async def test_otel_spans_without_ids_are_numbered_by_the_server(memory_client: LightningStoreClient) -> None:
    claimed = await memory_client.start_rollout("otel")
    rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
    spans = _otel_spans(3)
    stored = [await memory_client.add_otel_span(rid, aid, s) for s in spans]
    assert [s.sequence_id for s in stored if s is not None] == [1, 2, 3]
    assert stored[2] is not None and stored[2].attributes == {"i": 2, "xs": [1, 2]}
    assert await memory_client.add_otel_span(rid, aid, spans[0]) is None  # a duplicate: nothing stored
    explicit = await memory_client.add_otel_span(rid, aid, _otel_spans(1)[0], sequence_id=10)
    assert explicit is not None and explicit.sequence_id == 10
    listed = await memory_client.query_spans(rid)
    assert [(s.name, s.sequence_id) for s in listed] == [("op-0", 1), ("op-1", 2), ("op-2", 3), ("op-0", 10)]
    with pytest.raises(NotFoundError, match="ro-missing"):
        await memory_client.add_otel_span("ro-missing", aid, _otel_spans(1)[0])
    assert memory_client._sequenced_route  # a missing rollout is not a missing route


async def test_otel_spans_against_a_server_without_the_sequenced_route(
    memory_client: LightningStoreClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream's server has no POST /spans/sequenced: the client falls back to /spans/next then /spans."""
    from agentlightning_server import routes

    monkeypatch.setattr(routes, "ADD_SPAN_SEQUENCED", routes._post("/spans/absent", routes.add_span, keyed=True))
    claimed = await memory_client.start_rollout("otel")
    rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
    stored = [await memory_client.add_otel_span(rid, aid, s) for s in _otel_spans(2)]
    assert [s.sequence_id for s in stored if s is not None] == [1, 2]
    assert not memory_client._sequenced_route
    assert [s.sequence_id for s in await memory_client.query_spans(rid)] == [1, 2]


async def test_user_chosen_ids_with_odd_characters(memory_client: LightningStoreClient) -> None:
    for worker_id in ("host/worker 1", "w?x=1#frag", "ünï"):
        worker = await memory_client.update_worker(worker_id, heartbeat_stats={"n": 1})
        assert worker.worker_id == worker_id
        assert (await memory_client.get_worker_by_id(worker_id)).worker_id == worker_id  # type: ignore[union-attr]
    updated = await memory_client.update_resources("team/prompt v2", {})
    assert updated.resources_id == "team/prompt v2"
    assert (await memory_client.get_resources_by_id("team/prompt v2")).version == 1  # type: ignore[union-attr]


class _SpanEcho:
    """ASGI app answering ``POST /v1/agl/spans`` with a fixed body (``None``: echo the request)."""

    def __init__(self) -> None:
        self.answer: Any = None

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        payload = body if self.answer is None else self.answer
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def test_add_span_returns_what_the_server_stored() -> None:
    """The caller's own span when the server stored it as sent, else the server's version (or None)."""
    import orjson
    from agentlightning.testing.store_suite import make_span
    from agentlightning.types.serialization import to_dict

    app = _SpanEcho()
    span = make_span("ro-1", "at-1", 1)
    with LightningStoreServer(None, port=0, app=app) as server:  # type: ignore[arg-type]
        client = LightningStoreClient(server.endpoint)
        try:
            assert await client.add_span(span) is span
            changed = to_dict(span)
            changed["sequence_id"] = 7
            app.answer = orjson.dumps(changed)
            stored = await client.add_span(span)
            assert stored is not None and stored is not span and stored.sequence_id == 7
            assert stored.span_id == span.span_id
            app.answer = b"null"
            assert await client.add_span(span) is None
        finally:
            await client.close()


class _Recorder:
    """ASGI wrapper: the real app, keeping the path and body of every request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: List[tuple[str, bytes]] = []

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: List[bytes] = []

        async def recording() -> Any:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                self.bodies.append((scope["path"], b"".join(chunks)))
            return message

        await self.app(scope, recording, send)


async def test_the_mode_filter_is_sent_only_when_set() -> None:
    """A query without ``mode_in`` is the request it always was (what a server without the filter expects)."""
    import json

    recorder = _Recorder(create_app(_memory()))
    with LightningStoreServer(None, port=0, app=recorder) as server:  # type: ignore[arg-type]
        client = LightningStoreClient(server.endpoint)
        try:
            train = await client.enqueue_rollout("a", mode="train")
            await client.enqueue_rollout("b")
            assert [r.rollout_id for r in await client.query_rollouts(mode_in=["train"])] == [train.rollout_id]
            assert len(list(await client.query_rollouts())) == 2
        finally:
            await client.close()
    searches = [json.loads(body) for path, body in recorder.bodies if path.endswith("/rollouts/search")]
    assert len(searches) == 2
    assert searches[0]["mode_in"] == ["train"] and "mode_in" not in searches[1]
