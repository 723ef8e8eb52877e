"""The HTTP edge under hostile input: deep JSON, wide integers, compressed bodies, oversized heads, idle
connections, methods and headers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agentlightning.store.limits import MAX_JSON_DEPTH


def _deep_body(depth: int) -> bytes:
    """An enqueue body whose whole JSON nests ``depth`` levels."""
    inner = "[" * (depth - 3) + "1" + "]" * (depth - 3)
    return ('{"rollouts":[{"input":' + inner + "}]}").encode()


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 9, 1_000, 1_100, 100_000])
def test_deep_json_body_is_refused_with_400(served: Any, depth: int) -> None:
    response = served.post(
        "/queues/rollouts/enqueue", content=_deep_body(depth), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "nested more than" in response.json()["detail"]
    assert served.get("/rollouts").status_code == 200
    assert served.post("/queues/rollouts/dequeue", json={}).status_code == 200


def test_deepest_storable_value_round_trips(served: Any) -> None:
    value: Any = 1
    for _ in range(MAX_JSON_DEPTH):
        value = [value]
    response = served.post("/queues/rollouts/enqueue", content=json.dumps({"rollouts": [{"input": value}]}))
    assert response.status_code == 201, response.text
    [listed] = served.get("/rollouts").json()["items"]
    assert listed["input"] == value


@pytest.mark.parametrize("number", ["18446744073709551616", "-9223372036854775809", "1" + "0" * 40])
def test_integers_beyond_64_bits_are_refused(served: Any, number: str) -> None:
    body = '{"rollouts":[{"input":{"n":' + number + "}}]}"
    response = served.post("/queues/rollouts/enqueue", content=body.encode())
    assert response.status_code == 400, response.text
    assert "integer" in response.json()["detail"]
    assert served.get("/rollouts").json()["items"] == []


def test_widest_integers_round_trip_exactly(served: Any) -> None:
    body = '{"rollouts":[{"input":[18446744073709551615,-9223372036854775808]}]}'
    assert served.post("/queues/rollouts/enqueue", content=body.encode()).status_code == 201
    raw = served.get("/rollouts").content
    assert b"[18446744073709551615,-9223372036854775808]" in raw


def test_405_names_the_allowed_methods(served: Any) -> None:
    response = served.delete("/queues/rollouts/enqueue")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert "not allowed" in response.json()["detail"]


def test_duplicate_authorization_headers_are_refused() -> None:
    import httpx
    from agentlightning_memory import InMemoryLightningStore
    from agentlightning_server import LightningStoreServer

    with LightningStoreServer(InMemoryLightningStore(watchdog_interval=None), port=0, token="right") as server:
        url = server.endpoint + "/v1/agl/rollouts"
        with httpx.Client() as http:
            assert http.get(url, headers={"Authorization": "Bearer right"}).status_code == 200
            for pair in (["Bearer right", "Bearer wrong"], ["Bearer wrong", "Bearer right"], ["Bearer right"] * 2):
                headers = [("Authorization", value) for value in pair]
                response = http.get(url, headers=headers)
                assert response.status_code == 400, (pair, response.text)
                assert "more than one Authorization header" in response.json()["detail"]


def _bomb(size: int) -> bytes:
    """A gzip body of ``size`` zero bytes (about a thousand times smaller)."""
    import zlib

    packer = zlib.compressobj(9, wbits=31)
    chunk = b"\0" * (1024 * 1024)
    return b"".join([packer.compress(chunk) for _ in range(size // len(chunk))] + [packer.flush()])


def test_gzip_body_is_refused_as_it_inflates_past_the_limit() -> None:
    import tracemalloc

    import httpx
    from agentlightning_memory import InMemoryLightningStore
    from agentlightning_server.app import ServerSettings
    from agentlightning_server.testing import StoreHost

    limit = 1024 * 1024
    bomb = _bomb(256 * 1024 * 1024)
    assert len(bomb) < limit
    with StoreHost(ServerSettings(max_body_bytes=limit)) as host:
        _, url = host.add(lambda: InMemoryLightningStore(watchdog_interval=None))
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
        with httpx.Client(timeout=60) as http:
            tracemalloc.start()
            try:
                response = http.post(url + "/v1/traces", content=bomb, headers=headers)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert response.status_code == 400, response.text
            assert "larger than the limit" in response.json()["detail"]
            assert peak < 16 * limit, f"decoding held {peak} bytes at once"
            import gzip

            ok = http.post(url + "/v1/traces", content=gzip.compress(b""), headers=headers)
            assert ok.status_code == 200, ok.text
            cut = http.post(url + "/v1/traces", content=gzip.compress(b"x" * 100)[:-6], headers=headers)
            assert cut.status_code == 400 and "gzip" in cut.json()["detail"]


# -- connections -----------------------------------------------------------------------------------------------------


def _server(**settings: Any) -> Any:
    from agentlightning_memory import InMemoryLightningStore
    from agentlightning_server import LightningStoreServer

    server = LightningStoreServer(InMemoryLightningStore(watchdog_interval=None), port=0)
    for name, value in settings.items():
        setattr(server.settings, name, value)
    return server


def _connect(endpoint: str) -> Any:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    return sock


def _read_all(sock: Any) -> bytes:
    """Everything the server sends until it closes the connection (the socket's 30 s timeout bounds the wait)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def _closed_now(sock: Any) -> bool:
    """Whether the server has closed ``sock`` (its end of stream is already here)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    finally:
        sock.setblocking(True)


def test_oversized_request_head_and_url_are_refused() -> None:
    import httpx

    with _server() as server, httpx.Client(timeout=30) as http:
        health = server.endpoint + "/v1/agl/health"
        response = http.get(health, headers={"X-Big": "a" * (128 * 1024)})
        assert response.status_code == 431
        response = http.get(health, headers={f"X-{i}": "b" * 1000 for i in range(100)})
        assert response.status_code == 431
        response = http.get(health + "?q=" + "c" * (40 * 1024))
        assert response.status_code == 414
        assert http.get(health, headers={"X-Fine": "d" * 30_000}).status_code == 200
        big_body = http.post(
            server.endpoint + "/v1/agl/queues/rollouts/enqueue", json={"rollouts": [{"input": "e" * 5_000_000}]}
        )
        assert big_body.status_code == 201, "a large body is not a large head"


def test_a_huge_header_is_cut_off_without_reading_it_all() -> None:
    with _server() as server:
        sock = _connect(server.endpoint)
        try:
            sock.sendall(b"GET /v1/agl/health HTTP/1.1\r\nHost: x\r\nX-Huge: ")
            sent = 0
            try:
                while sent < 256 * 1024 * 1024:  # the server hangs up long before: sending then fails
                    sock.sendall(b"z" * 65536)
                    sent += 65536
            except OSError:
                pass
            assert sent < 16 * 1024 * 1024
        finally:
            sock.close()


def test_silent_and_slow_connections_are_dropped() -> None:
    with _server(head_timeout=0.3) as server:
        silent = _connect(server.endpoint)
        slow = _connect(server.endpoint)
        try:
            slow.sendall(b"GET /v1/agl/health HTTP/1.1\r\nHost: x\r\n")
            assert _read_all(silent) == b""
            answer = _read_all(slow)
            assert answer.startswith(b"HTTP/1.1 408"), answer
        finally:
            silent.close()
            slow.close()


def _answer_of(sock: Any) -> bytes:
    """One whole answer to a request on a keep-alive connection (its head and its Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection (after {data!r})"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-answer"
        body += chunk
    return head


def test_head_timeout_counts_from_each_heads_first_byte_on_a_kept_alive_connection() -> None:
    import time

    request = b"GET /v1/agl/health HTTP/1.1\r\nHost: x\r\n\r\n"
    with _server(head_timeout=0.4) as server:
        busy = _connect(server.endpoint)
        stalled = None
        try:
            started = time.monotonic()
            while time.monotonic() - started < 1.2:  # requests for three head timeouts: the connection stays
                busy.sendall(request)
                assert _answer_of(busy).startswith(b"HTTP/1.1 200")
                time.sleep(0.05)
            stalled = _connect(server.endpoint)
            stalled.sendall(request)
            assert _answer_of(stalled).startswith(b"HTTP/1.1 200")
            time.sleep(0.6)  # idle past the head timeout between requests: allowed (keep-alive timeout)
            begun = time.monotonic()
            stalled.sendall(b"GET /v1/agl/health HTTP/1.1\r\n")
            answer = _read_all(stalled)
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert 0.3 < time.monotonic() - begun < 5, "dropped one head timeout after the head's first byte"
            busy.sendall(request)
            assert _answer_of(busy).startswith(b"HTTP/1.1 200")
        finally:
            busy.close()
            if stalled is not None:
                stalled.close()


def test_connection_cap_makes_room_by_closing_idle_connections() -> None:
    import httpx

    with _server(max_connections=8) as server:
        idle = [_connect(server.endpoint) for _ in range(20)]
        try:
            with httpx.Client(timeout=30) as http:
                for _ in range(3):
                    assert http.get(server.endpoint + "/v1/agl/health").status_code == 200
            closed = sum(1 for sock in idle if _closed_now(sock))
            assert closed >= 12, "idle connections beyond the cap were closed to make room"
        finally:
            for sock in idle:
                sock.close()


# -- the idempotency cache -------------------------------------------------------------------------------------------


async def _answer(cache: Any, key: str, body: bytes) -> Any:
    async def handler() -> Any:
        return (201, body)

    return await cache.run(key, handler)


@pytest.mark.anyio
async def test_idempotency_cache_is_bounded_by_bytes() -> None:
    from agentlightning_server.idempotency import IdempotencyCache

    cache = IdempotencyCache(max_bytes=10 * 1024 * 1024)
    for i in range(80):
        await _answer(cache, f"k{i}", b"x" * (1024 * 1024))
    assert cache.bytes <= 10 * 1024 * 1024 and 0 < len(cache) <= 10
    assert await _answer(cache, "k79", b"new") == (201, b"x" * (1024 * 1024)), "the newest answers are replayed"
    assert await _answer(cache, "k0", b"new") == (201, b"new"), "the oldest were dropped"


@pytest.mark.anyio
async def test_idempotency_cache_memory_matches_its_byte_count() -> None:
    """Kept answers cost about the bytes the cache counts, also for orjson's small bodies (each of which holds a
    ~4 KB buffer): 10,000 kept dequeue answers must not cost ten times the bound the cache enforces."""
    import tracemalloc

    import orjson
    from agentlightning_server.idempotency import IdempotencyCache

    cache = IdempotencyCache()
    answer = {"rollout_id": "ro-0123456789ab", "input": {"task": 1}, "status": "running", "attempt": {"x": "y" * 300}}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            await _answer(cache, f"k{i}", orjson.dumps(answer))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(cache) == 1000
    assert held < 2 * cache.bytes, f"{held} bytes held for {cache.bytes} counted"
    assert await _answer(cache, "k7", b"new") == (201, orjson.dumps(answer)), "a kept answer replays unchanged"


@pytest.mark.anyio
async def test_idempotency_entries_expire_by_time() -> None:
    from agentlightning_server.idempotency import IdempotencyCache

    now = [1000.0]
    cache = IdempotencyCache(ttl_seconds=60, clock=lambda: now[0])
    await _answer(cache, "old", b"1")
    now[0] += 30
    assert await _answer(cache, "old", b"2") == (201, b"1")
    now[0] += 31
    await _answer(cache, "fresh", b"3")
    assert len(cache) == 1, "an expired entry is dropped once a newer one is kept, without being looked up"
    assert await _answer(cache, "old", b"4") == (201, b"4")


# -- large writes ----------------------------------------------------------------------------------------------------


def test_large_bodies_are_parsed_and_converted_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 31 MB span batch must not stall other clients: its parsing and conversion run in worker threads."""
    import threading

    import httpx
    from agentlightning_server import app as app_module
    from agentlightning_server import routes

    threads: dict[str, set[str]] = {"parse": set(), "span": set()}
    parse, span = app_module._parse_json, routes._span

    def recording_parse(raw: bytes) -> Any:
        if len(raw) > 1024 * 1024:
            threads["parse"].add(threading.current_thread().name)
        return parse(raw)

    def recording_span(data: Any, what: str = "span") -> Any:
        threads["span"].add(threading.current_thread().name)
        return span(data, what)

    monkeypatch.setattr(app_module, "_parse_json", recording_parse)
    monkeypatch.setattr(routes, "_span", recording_span)
    with _server() as server, httpx.Client(timeout=120) as http:
        api = server.endpoint + "/v1/agl"
        http.post(api + "/queues/rollouts/enqueue", json={"rollouts": [{"input": "x"}]})
        [claimed] = http.post(api + "/queues/rollouts/dequeue", json={"worker_id": "w"}).json()
        rid, aid = claimed["rollout_id"], claimed["attempt"]["attempt_id"]
        spans = [
            {
                "rollout_id": rid, "attempt_id": aid, "sequence_id": i, "trace_id": f"{i:032x}", "span_id": f"{i:016x}",
                "parent_id": None, "name": "s", "status": {"status_code": "OK"}, "attributes": {"a": "v" * 4000},
                "events": [], "links": [], "start_time": 1.0, "end_time": 2.0, "context": None, "parent": None,
                "resource": {"attributes": {}},
            }
            for i in range(400)
        ]  # fmt: skip
        response = http.post(api + "/spans/batch", json={"spans": spans})
        assert response.status_code == 201, response.text
        assert len(response.json()["stored"]) == 400
        loop_thread = server._launcher._thread.name
    assert threads["parse"] and loop_thread not in threads["parse"]
    assert threads["span"] and loop_thread not in threads["span"]
