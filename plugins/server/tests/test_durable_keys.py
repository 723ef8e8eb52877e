"""Idempotency keys kept in the store (SQLite here): a retried write is applied once, whichever server process
answers the retry, also after the server that applied it was killed and restarted."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import httpx
import pytest
from agentlightning.types.core import EnqueueRolloutRequest
from agentlightning_server import LightningStoreServer
from agentlightning_server.serve import free_port
from agentlightning_server.testing import StoreHost

ENQUEUE = "/queues/rollouts/enqueue"
DEQUEUE = "/queues/rollouts/dequeue"


def _sqlite(path: Path) -> Any:
    from agentlightning_sqlite import SqliteLightningStore

    return SqliteLightningStore(str(path), watchdog_interval=None)


@pytest.fixture
def two_servers(store_host: StoreHost, tmp_path: Path) -> Iterator[Tuple[httpx.Client, httpx.Client]]:
    """Raw HTTP access to two server apps (each with its own in-process cache) over one SQLite file."""
    db = tmp_path / "run.db"
    keys_urls = [store_host.add(lambda: _sqlite(db)) for _ in range(2)]
    clients = [httpx.Client(base_url=url + "/v1/agl", timeout=30) for _, url in keys_urls]
    try:
        yield clients[0], clients[1]
    finally:
        for client in clients:
            client.close()
        for key, _ in keys_urls:
            store_host.drop(key)


def _rollout_ids(http: httpx.Client) -> list:
    answer = http.post("/rollouts/search", json={})
    assert answer.status_code == 200, answer.text
    return [item["rollout_id"] for item in answer.json()["items"]]


def test_a_retry_on_another_server_replays_the_answer(two_servers: Tuple[httpx.Client, httpx.Client]) -> None:
    first, second = two_servers
    headers = {"Idempotency-Key": "enqueue-1"}
    applied = first.post(ENQUEUE, json={"rollouts": [{"input": {"n": 1}}]}, headers=headers)
    assert applied.status_code == 201, applied.text
    retried = second.post(ENQUEUE, json={"rollouts": [{"input": {"n": 1}}]}, headers=headers)
    assert retried.status_code == 201
    assert retried.content == applied.content
    assert _rollout_ids(second) == [applied.json()[0]["rollout_id"]]
    other = second.post(ENQUEUE, json={"rollouts": [{"input": {"n": 2}}]}, headers={"Idempotency-Key": "enqueue-2"})
    assert other.status_code == 201 and len(_rollout_ids(first)) == 2


def test_a_retried_dequeue_claims_once(two_servers: Tuple[httpx.Client, httpx.Client]) -> None:
    first, second = two_servers
    first.post(ENQUEUE, json={"rollouts": [{"input": {"n": n}} for n in range(2)]})
    headers = {"Idempotency-Key": "dequeue-1"}
    claimed = first.post(DEQUEUE, json={"worker_id": "w"}, headers=headers)
    retried = second.post(DEQUEUE, json={"worker_id": "w"}, headers=headers)
    assert claimed.status_code == retried.status_code == 200
    assert retried.json() == claimed.json() and len(claimed.json()) == 1
    queued = second.post("/rollouts/search", json={"status_in": ["queuing"]}).json()["items"]
    assert len(queued) == 1, "the retry claimed a second rollout"


def _apply_without_answer(store_host: StoreHost, key: str, inputs: List[Dict[str, Any]]) -> List[str]:
    """Apply an enqueue under ``key`` as a server does, then "die": the answer is never saved."""
    from agentlightning.store.request_keys import request_key_scope

    store = store_host.backing_store(store_host.keys()[-1])

    async def apply() -> List[str]:
        with request_key_scope(f"POST /v1/agl{ENQUEUE} {key}") as scope:  # what a server records: method, path, key
            rollouts = await store.enqueue_many_rollouts([EnqueueRolloutRequest(input=i) for i in inputs])
        assert scope.claimed
        return [r.rollout_id for r in rollouts]

    return store_host.server.run_in_server_loop(apply)  # type: ignore[no-any-return]


def test_a_retry_after_the_answer_was_lost_is_answered_from_the_recorded_result(
    two_servers: Tuple[httpx.Client, httpx.Client], store_host: StoreHost
) -> None:
    """The server that applied a write died before saving its answer: the retry gets the same rollouts back, and
    nothing is enqueued again."""
    first, _ = two_servers
    inputs = [{"n": 1}, {"n": 2}]
    applied = _apply_without_answer(store_host, "lost-1", inputs)
    answer = first.post(
        ENQUEUE, json={"rollouts": [{"input": i} for i in inputs]}, headers={"Idempotency-Key": "lost-1"}
    )
    assert answer.status_code == 201, answer.text
    assert [r["rollout_id"] for r in answer.json()] == applied
    assert sorted(_rollout_ids(first)) == sorted(applied)


def test_an_applied_request_without_a_recorded_result_is_refused(
    two_servers: Tuple[httpx.Client, httpx.Client], store_host: StoreHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too large a result to record, and no saved answer (the server died between its commit and saving its
    answer): the retry is not applied again, and says so (409)."""
    from agentlightning.store import request_keys
    from agentlightning_server import app as app_module

    monkeypatch.setattr(app_module, "RECORDED_ANSWER_WAIT_SECONDS", 0.2)
    monkeypatch.setattr(request_keys, "MAX_RESULT_BYTES", 16)  # as an enqueue of thousands of rollouts
    first, _ = two_servers
    inputs = [{"n": 1}, {"n": 2}]
    _apply_without_answer(store_host, "lost-2", inputs)
    answer = first.post(
        ENQUEUE, json={"rollouts": [{"input": i} for i in inputs]}, headers={"Idempotency-Key": "lost-2"}
    )
    assert answer.status_code == 409
    assert "applied already" in answer.json()["detail"]
    assert len(_rollout_ids(first)) == len(inputs)


def test_keys_expire(tmp_path: Path) -> None:
    import anyio
    from agentlightning.store.request_keys import request_key_scope

    async def run() -> None:
        store = _sqlite(tmp_path / "keys.db")
        try:
            with request_key_scope("old"):
                await store.enqueue_rollout({"n": 1})
            assert (await store.request_response("old", ttl=600))[2] is not None  # the recorded result
            assert await store.request_response("old", ttl=-1) is None  # older than the time to live: never used
            assert await store.expire_request_keys(ttl=600) == 0  # nothing that old
            assert await store.expire_request_keys(ttl=-1) == 0  # just ran: at most once a minute
            with request_key_scope("new"):
                await store.enqueue_rollout({"n": 2})
            assert await store.expire_request_keys(ttl=-1, force=True) == 2
            assert await store.request_response("old", ttl=600) is None
            assert (await store.query_rollouts()).total == 2  # only the keys go
        finally:
            await store.close()

    anyio.run(run)


def test_a_retry_after_the_server_was_killed_is_not_applied_twice(tmp_path: Path) -> None:
    """SIGKILL of the server process between a write and its retry: the restarted server answers the retry with
    the records the first try wrote, and writes nothing again."""
    pytest.importorskip("agentlightning_sqlite")
    url = f"sqlite:///{tmp_path / 'run.db'}"
    port = free_port()
    server = LightningStoreServer(url, port=port, launch_mode="subprocess").start()
    try:
        base = server.endpoint + "/v1/agl"
        body = {"rollouts": [{"input": {"n": 1}}, {"input": {"n": 2}}]}
        headers = {"Idempotency-Key": "enqueue-before-kill"}
        with httpx.Client(base_url=base, timeout=30) as http:
            applied = http.post(ENQUEUE, json=body, headers=headers)
            claimed = http.post(DEQUEUE, json={"worker_id": "w"}, headers={"Idempotency-Key": "dequeue-before-kill"})
        assert applied.status_code == 201 and claimed.status_code == 200
        assert server._process is not None
        os.kill(server._process.pid, signal.SIGKILL)
        server._process.wait(10)
        server = LightningStoreServer(url, port=port, launch_mode="subprocess").start()
        with httpx.Client(base_url=base, timeout=30) as http:
            retried = http.post(ENQUEUE, json=body, headers=headers)
            reclaimed = http.post(DEQUEUE, json={"worker_id": "w"}, headers={"Idempotency-Key": "dequeue-before-kill"})
            # the same records, read back as they are now (the first enqueued rollout has been claimed since)
            assert retried.status_code == 201
            assert [r["rollout_id"] for r in retried.json()] == [r["rollout_id"] for r in applied.json()]
            assert [(r["rollout_id"], r["attempt"]["attempt_id"]) for r in reclaimed.json()] == [
                (r["rollout_id"], r["attempt"]["attempt_id"]) for r in claimed.json()
            ]
            rollouts = http.post("/rollouts/search", json={}).json()["items"]
            assert len(rollouts) == 2
            assert sorted(r["status"] for r in rollouts) == ["preparing", "queuing"]
    finally:
        server.stop()


def test_a_retried_sequenced_span_is_stored_once(two_servers: Tuple[httpx.Client, httpx.Client]) -> None:
    """The server allocates the span's sequence id: a retry on another server gets the same id back (the recorded
    result names the stored span, read back for the answer), and no second sequence id is used."""
    from agentlightning.testing.store_suite import make_span
    from agentlightning.types.serialization import to_dict

    first, second = two_servers
    started = first.post("/rollouts", json={"input": {"n": 1}}).json()
    rid, aid = started["rollout_id"], started["attempt"]["attempt_id"]
    body = to_dict(make_span(rid, aid, 0, name="call"))
    headers = {"Idempotency-Key": "span-1"}
    stored = first.post("/spans/sequenced", json=body, headers=headers)
    retried = second.post("/spans/sequenced", json=body, headers=headers)
    assert stored.status_code == retried.status_code == 201
    assert retried.json() == stored.json() == {"sequence_id": 1}
    after = second.post("/spans/sequenced", json={**body, "span_id": "other"}, headers={"Idempotency-Key": "span-2"})
    assert after.json() == {"sequence_id": 2}


def _traces(http: httpx.Client) -> str:
    return str(http.base_url).split("/v1/agl")[0] + "/v1/traces"


def test_a_retried_otlp_export_on_another_server_is_stored_once(
    two_servers: Tuple[httpx.Client, httpx.Client],
) -> None:
    """An OTLP export under an Idempotency-Key, retried on another server: the same answer, the spans stored once
    under the sequence ids the first try allocated, and no sequence id used twice."""
    from agentlightning.testing.store_suite import make_span
    from agentlightning.utils.otlp import export_request

    first, second = two_servers
    started = first.post("/rollouts", json={"input": {"n": 1}}).json()
    rid, aid = started["rollout_id"], started["attempt"]["attempt_id"]
    spans = [make_span(rid, aid, 0, name=f"s{n}") for n in range(3)]
    ids = {"agentlightning.rollout_id": rid, "agentlightning.attempt_id": aid}  # no sequence id: the server's
    body = export_request([(ids, spans)]).SerializeToString()
    headers = {"Idempotency-Key": "otlp-1", "Content-Type": "application/x-protobuf"}
    stored = first.post(_traces(first), content=body, headers=headers)
    retried = second.post(_traces(second), content=body, headers=headers)
    assert stored.status_code == retried.status_code == 200, retried.text
    assert retried.content == stored.content
    found = second.post("/spans/search", json={"rollout_id": rid}).json()["items"]
    assert sorted((s["name"], s["sequence_id"]) for s in found) == [("s0", 1), ("s1", 2), ("s2", 3)]
    assert second.post("/spans/next", json={"rollout_id": rid, "attempt_id": aid}).json() == {"sequence_id": 4}
