"""Several store processes on one PostgreSQL schema: idempotency keys shared through the database, one elected
watchdog, and two store servers serving one run while one of them is killed."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Dict, List

import anyio
import pytest


def _store(url: str, **options: Any) -> Any:
    from agentlightning_postgres import PostgresLightningStore

    return PostgresLightningStore(url, **options)


def test_a_key_recorded_by_one_process_stops_the_write_in_another(schema_url: str) -> None:
    from agentlightning.store.request_keys import request_key_scope

    async def run() -> None:
        first, second = _store(schema_url, watchdog_interval=None), _store(schema_url, watchdog_interval=None)
        try:
            assert first.keeps_request_keys
            with request_key_scope("POST /enqueue k1") as scope:
                await first.enqueue_rollout({"n": 1})
            assert scope.claimed
            status, body, result = await second.request_response("POST /enqueue k1", ttl=600)
            assert (status, body) == (None, None) and result is not None  # the write's result, for a replay
            await first.save_request_response("POST /enqueue k1", 201, b'[{"n": 1}]')
            with request_key_scope("POST /enqueue k1") as retry:
                with pytest.raises(Exception, match="applied already"):
                    await second.enqueue_rollout({"n": 1})
            assert retry.applied_before and not retry.claimed
            assert (await second.request_response("POST /enqueue k1", ttl=600))[:2] == (201, b'[{"n": 1}]')
            assert (await second.query_rollouts()).total == 1
        finally:
            await first.close()
            await second.close()

    anyio.run(run)


def test_one_watchdog_per_schema_and_another_takes_over(schema_url: str) -> None:
    """Of two stores on one schema, one runs the timeout scans; once it closes, the other takes over."""
    stores = [_store(schema_url, watchdog_interval=0.1) for _ in range(2)]
    try:
        deadline = time.monotonic() + 30
        while not all(s.backend.watchdog_tried for s in stores):
            assert time.monotonic() < deadline, "the watchdogs never ran"
            time.sleep(0.05)
        time.sleep(0.3)
        leaders = [s for s in stores if s.backend.watchdog_leader]
        assert len(leaders) == 1
        follower = stores[1 - stores.index(leaders[0])]
        assert not follower._claim_scan(), "a follower must leave the timeout scans to the leader"
        anyio.run(leaders[0].close)
        while not follower.backend.watchdog_leader:
            assert time.monotonic() < deadline, "nobody took the watchdog over"
            time.sleep(0.05)
    finally:
        for store in stores:
            anyio.run(store.close)


ROLLOUTS = 40
RUNNERS = 4


@pytest.mark.slow
def test_two_servers_one_killed_the_run_completes(schema_url: str) -> None:
    """An algorithm and runners (one client over both servers' URLs) carry a run on while one server is killed:
    every rollout finishes once, none is enqueued or claimed twice, and every acknowledged span (written or
    exported over OTLP) is stored once."""
    server_mod = pytest.importorskip("agentlightning_server")
    from agentlightning.testing.store_suite import make_span
    from agentlightning.utils.otlp import export_request
    from agentlightning_server.serve import free_port

    url = schema_url
    servers = [
        server_mod.LightningStoreServer(url, port=free_port(), launch_mode="subprocess").start() for _ in range(2)
    ]
    urls = [server.endpoint for server in servers]
    finished: List[str] = []
    acked_spans: Dict[str, set] = {}
    killed = threading.Event()

    def kill_first() -> None:
        process = servers[0]._process
        assert process is not None
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        killed.set()

    async def runner(client: Any, name: str) -> None:
        while len(finished) < ROLLOUTS:
            claimed = await client.dequeue_rollout(worker_id=name)
            if claimed is None:
                await anyio.sleep(0.02)
                continue
            rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
            seqs = await client.get_many_span_sequence_ids([(rid, aid)] * 2)
            spans = [make_span(rid, aid, seq, name=name) for seq in seqs]
            await client.add_many_spans(spans)
            # and one over OTLP, its sequence id the server's: retried on the other server when one is killed
            exported = make_span(rid, aid, 0, name=f"{name}-otlp")
            ids = {"agentlightning.rollout_id": rid, "agentlightning.attempt_id": aid}
            await client.export_otlp(export_request([(ids, [exported])]).SerializeToString())
            acked_spans[rid] = {s.span_id for s in spans} | {exported.span_id}
            await client.update_attempt(rid, aid, status="succeeded")
            finished.append(rid)
            if len(finished) == ROLLOUTS // 3 and not killed.is_set():
                await anyio.to_thread.run_sync(kill_first)

    async def run() -> List[str]:
        client = server_mod.LightningStoreClient(urls, retry_delays=(0.1, 0.2, 0.5, 1.0, 2.0))
        try:
            enqueued = [(await client.enqueue_rollout({"n": n})).rollout_id for n in range(ROLLOUTS)]
            async with anyio.create_task_group() as group:
                for n in range(RUNNERS):
                    group.start_soon(runner, client, f"runner-{n}")
            done = await client.wait_for_rollouts(rollout_ids=enqueued, timeout=60)
            assert {r.rollout_id for r in done} == set(enqueued)
            return enqueued
        finally:
            await client.close()

    try:
        enqueued = anyio.run(run)
    finally:
        for server in servers:
            server.stop()
    assert killed.is_set(), "the server was never killed"
    assert sorted(finished) == sorted(enqueued), "a rollout was run twice or not at all"

    async def verify() -> None:
        store = _store(url, watchdog_interval=None)
        try:
            rollouts = (await store.query_rollouts()).items
            assert len(rollouts) == ROLLOUTS, "a retried enqueue was applied twice"
            assert {r.status for r in rollouts} == {"succeeded"}
            for rollout in rollouts:
                assert len((await store.query_attempts(rollout.rollout_id)).items) == 1
                spans = await store.query_spans(rollout.rollout_id)
                assert {s.span_id for s in spans} == acked_spans[rollout.rollout_id]
                assert len({s.sequence_id for s in spans}) == len(spans) == 3
        finally:
            await store.close()

    anyio.run(verify)
