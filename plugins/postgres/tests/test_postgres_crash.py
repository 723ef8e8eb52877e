"""Crash test: a store server over PostgreSQL (``agl store serve``, its own process) is SIGKILLed mid-run.

A client writes rollouts, spans and final statuses through the server and records each write the server
acknowledged. Once a few are acknowledged, another thread SIGKILLs the server while the client keeps writing, then
starts a new server on the same database and schema. The client's retries carry the run on; at the end every
acknowledged write is read back straight from the database.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Dict, List

import anyio
import pytest

pytestmark = pytest.mark.slow

ITERATIONS = 30
KILL_AFTER = 5


async def _verify_acknowledged(schema_url: str, acked: List[Dict[str, Any]]) -> None:
    """Every acknowledged rollout is stored as succeeded with its spans (read straight from the database)."""
    from agentlightning_postgres import PostgresLightningStore

    store = PostgresLightningStore(schema_url, watchdog_interval=None)
    try:
        for record in acked:
            rollout = await store.get_rollout_by_id(record["rollout_id"])
            assert rollout is not None and rollout.status == "succeeded", record
            spans = await store.query_spans(record["rollout_id"])
            assert record["span_ids"] <= {s.span_id for s in spans}, record
    finally:
        await store.close()


def test_sigkill_of_a_store_server_loses_no_acknowledged_write(schema_url: str) -> None:
    server_mod = pytest.importorskip("agentlightning_server")
    from agentlightning.testing.store_suite import make_span
    from agentlightning_server.serve import free_port

    port = free_port()
    servers = [server_mod.LightningStoreServer(schema_url, port=port, launch_mode="subprocess").start()]
    acked: List[Dict[str, Any]] = []
    enough = threading.Event()
    restarted = threading.Event()
    failures: List[BaseException] = []

    def crash_and_restart() -> None:
        try:
            enough.wait(120)
            process = servers[0]._process
            assert process is not None
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            servers.append(server_mod.LightningStoreServer(schema_url, port=port, launch_mode="subprocess").start())
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)
        finally:
            restarted.set()

    async def write() -> None:
        client = server_mod.LightningStoreClient(
            servers[0].endpoint, retry_delays=(0.1, 0.2, 0.3, 0.5, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0)
        )
        try:
            for i in range(ITERATIONS):
                await client.enqueue_rollout({"i": i})
                claimed = await client.dequeue_rollout(worker_id="w")
                if claimed is None:
                    continue
                rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
                seqs = await client.get_many_span_sequence_ids([(rid, aid)] * 3)
                spans = [make_span(rid, aid, seq, name=f"s{i}") for seq in seqs]
                await client.add_many_spans(spans)
                await client.update_attempt(rid, aid, status="succeeded")
                acked.append({"rollout_id": rid, "span_ids": {s.span_id for s in spans}})
                if len(acked) == KILL_AFTER:
                    enough.set()  # the kill lands while the next writes are in flight
        finally:
            await client.close()

    killer = threading.Thread(target=crash_and_restart)
    killer.start()
    try:
        anyio.run(write)
    finally:
        enough.set()
        restarted.wait(180)
        killer.join(30)
        for server in servers[1:]:
            server.stop()
    assert not failures, failures
    assert len(servers) == 2, "the server was not restarted"
    assert len(acked) > KILL_AFTER, "the run did not carry on after the crash"

    anyio.run(_verify_acknowledged, schema_url, acked)


def test_sigkill_of_the_database_loses_no_acknowledged_write(
    postgres_cluster: Any, schema_url: str, transaction_mode: Dict[str, str]
) -> None:
    """The PostgreSQL server itself is SIGKILLed while a store writes, then restarted (crash recovery from its
    write-ahead log): every write the store acknowledged is there, and the same store object carries on (its
    transactions run either way)."""
    from agentlightning.store.errors import StoreUnavailableError
    from agentlightning.testing.store_suite import make_span
    from agentlightning_postgres import PostgresLightningStore

    acked: List[Dict[str, Any]] = []
    unavailable = 0

    async def run() -> None:
        nonlocal unavailable
        store = PostgresLightningStore(schema_url, watchdog_interval=None, pool_timeout=3.0, **transaction_mode)
        try:
            i = 0
            while len(acked) < ITERATIONS:
                if len(acked) == KILL_AFTER and unavailable == 0:
                    postgres_cluster.kill_server()
                    try:
                        await store.enqueue_rollout({"i": -1})
                    except StoreUnavailableError:
                        unavailable += 1
                    postgres_cluster.restart()
                try:
                    rollout = await store.start_rollout({"i": i})
                    rid, aid = rollout.rollout_id, rollout.attempt.attempt_id
                    spans = [make_span(rid, aid, n, name=f"s{i}") for n in (1, 2, 3)]
                    await store.add_many_spans(spans)
                    await store.update_attempt(rid, aid, status="succeeded")
                except StoreUnavailableError:
                    unavailable += 1
                    continue
                acked.append({"rollout_id": rid, "span_ids": {s.span_id for s in spans}})
                i += 1
        finally:
            await store.close()

    anyio.run(run)
    assert unavailable >= 1, "the database crash went unnoticed"

    anyio.run(_verify_acknowledged, schema_url, acked)


def test_pooled_connections_lost_to_a_database_restart_are_replaced_unseen(
    postgres_cluster: Any, schema_url: str, transaction_mode: Dict[str, str]
) -> None:
    """After the database restarted, the pool's connections are dead; a transaction that fails on one before the
    database answered it (nothing written) is tried again on a fresh connection: the caller sees no error."""
    from agentlightning_postgres import PostgresLightningStore

    async def run() -> None:
        store = PostgresLightningStore(schema_url, watchdog_interval=None, pool_min=2, **transaction_mode)
        try:
            first = await store.enqueue_rollout({"i": 0})
            assert await store.get_rollout_by_id(first.rollout_id) is not None
            postgres_cluster.kill_server()
            postgres_cluster.restart()
            assert await store.get_rollout_by_id(first.rollout_id) is not None  # a read
            second = await store.enqueue_rollout({"i": 1})  # a write
            postgres_cluster.kill_server()
            postgres_cluster.restart()
            claimed = await store.dequeue_rollout(worker_id="w")  # a write first
            assert claimed is not None and claimed.rollout_id == first.rollout_id
            rollouts = await store.query_rollouts()
            assert [r.rollout_id for r in rollouts] == [first.rollout_id, second.rollout_id]
        finally:
            await store.close()

    anyio.run(run)
