"""PostgreSQL-specific behaviour: URLs, schema versions, claims and wake-ups across stores, SQL queries."""

from __future__ import annotations

from typing import Any, List

import anyio
import pytest
from agentlightning.store.errors import StoreUnavailableError
from agentlightning_postgres import PostgresBackend, PostgresLightningStore
from agentlightning_postgres.schema import SCHEMA_VERSION
from agentlightning_postgres.url import parse_url


def test_url_options_are_split_from_libpq_parameters() -> None:
    conninfo, options = parse_url("postgresql://u@h:5/db?schema=run_1&pool_max=4&sslmode=disable")
    assert conninfo == "postgresql://u@h:5/db?sslmode=disable"
    assert options == {"schema": "run_1", "pool_max": 4}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://h/db", "postgresql://"),
        ("postgresql://h/db?pool_max=many", "pool_max"),
        ("postgresql://h/db?schema=Run;drop", "schema"),
    ],
)
def test_bad_urls_are_refused_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_url(url)


def test_open_store_resolves_postgresql_urls(schema_url: str) -> None:
    from agentlightning.store import open_store

    async def main() -> None:
        for url in (schema_url, schema_url.replace("postgresql://", "postgres://", 1)):
            store = open_store(url)
            try:
                assert isinstance(store, PostgresLightningStore)
                assert store.reopen_url() == url
            finally:
                await store.close()

    anyio.run(main)


def test_processes_opening_one_new_schema_at_once_all_open_it(postgres_url: str) -> None:
    """Store servers started together on a new schema: each opens it (one creates it, none fails on its name)."""
    import threading

    from conftest import new_schema_url

    for _ in range(3):
        url = new_schema_url(postgres_url)
        start = threading.Barrier(6)
        opened: List[Any] = []
        failed: List[BaseException] = []

        def open_one() -> None:
            start.wait()
            try:
                opened.append(PostgresLightningStore(url, watchdog_interval=None, pool_min=1))
            except BaseException as exc:  # noqa: BLE001 - reported below
                failed.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for store in opened:
            anyio.run(store.close)
        assert not failed, failed
        assert len(opened) == 6


def test_schema_is_versioned_and_a_newer_one_is_refused(schema_url: str) -> None:
    conninfo, options = parse_url(schema_url)
    backend = PostgresBackend(conninfo, schema=options["schema"])
    try:
        version = backend.run_sync(lambda tx: tx._one("SELECT version FROM agl_schema_version"), write=False)
        assert version == (SCHEMA_VERSION,)
        backend.run_sync(lambda tx: tx._cur.execute("UPDATE agl_schema_version SET version = version + 1"), write=True)
    finally:
        backend.close()
    with pytest.raises(StoreUnavailableError, match="newer than this release"):
        PostgresBackend(conninfo, schema=options["schema"])


def test_two_stores_never_claim_one_rollout_twice(schema_url: str) -> None:
    async def main() -> None:
        first = PostgresLightningStore(schema_url, watchdog_interval=None)
        second = PostgresLightningStore(schema_url, watchdog_interval=None)
        try:
            ids = {(await first.enqueue_rollout({"i": i})).rollout_id for i in range(40)}
            claimed: List[str] = []

            async def claim(store: PostgresLightningStore, worker: str) -> None:
                while True:
                    got = await store.dequeue_many_rollouts(limit=3, worker_id=worker)
                    if not got:
                        return
                    claimed.extend(r.rollout_id for r in got)

            async with anyio.create_task_group() as tg:
                for n in range(3):
                    tg.start_soon(claim, first, f"a{n}")
                    tg.start_soon(claim, second, f"b{n}")
            assert sorted(claimed) == sorted(ids)
        finally:
            await first.close()
            await second.close()

    anyio.run(main)


def test_a_finish_by_another_store_wakes_a_waiter_without_polling(schema_url: str) -> None:
    """The waiting store has no watchdog and never scans: only the NOTIFY of the other store can wake it."""

    async def main() -> None:
        waiter = PostgresLightningStore(schema_url, watchdog_interval=None, scan_debounce_seconds=3600)
        writer = PostgresLightningStore(schema_url, watchdog_interval=None)
        try:
            assert waiter.backend.shared_across_processes is False  # the engine polls no change token
            started = await writer.start_rollout({"q": 1})
            result: List[Any] = []

            async def wait() -> None:
                result.extend(await waiter.wait_for_rollouts(rollout_ids=[started.rollout_id]))

            with anyio.fail_after(60):  # a hang guard: without the notification the waiter would never wake
                async with anyio.create_task_group() as tg:
                    tg.start_soon(wait)
                    # once the waiter has read the rollout (unfinished) and armed itself, only a report can wake it
                    while not any(w.outstanding for w in waiter._notifier._waiters.values()):  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                    await writer.update_attempt(started.rollout_id, started.attempt.attempt_id, status="succeeded")
            assert [r.rollout_id for r in result] == [started.rollout_id]
            assert result[0].status == "succeeded"
        finally:
            await waiter.close()
            await writer.close()

    anyio.run(main)


def test_a_rollout_costs_few_round_trips(schema_url: str, monkeypatch: Any) -> None:
    """Round trips to the database (statements and commits) of a rollout's three writes as a store server makes
    them (each under an idempotency key): claiming a rollout from the queue reads it and its latest attempt in the
    same statement, a rollout read brings its latest attempt too, later reads in the transaction reuse them, and the
    NOTIFY of a finish travels with the COMMIT."""
    import psycopg
    from agentlightning.store.request_keys import request_key_scope
    from agentlightning.testing.store_suite import make_span

    trips: List[str] = []
    execute, commit = psycopg.Cursor.execute, psycopg.Connection.commit

    def counted_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(str(query)[:60])
        return execute(self, query, *args, **kwargs)

    def counted_commit(self: Any) -> None:
        if self.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE:  # else no round trip
            trips.append("COMMIT")
        commit(self)

    async def main() -> List[int]:
        store = PostgresLightningStore(schema_url, watchdog_interval=None)
        try:
            rollout = await store.enqueue_rollout({"n": 1})
            monkeypatch.setattr(psycopg.Cursor, "execute", counted_execute)
            monkeypatch.setattr(psycopg.Connection, "commit", counted_commit)
            counts = []
            with request_key_scope("dequeue"):
                claimed = await store.dequeue_rollout(worker_id="w")
            assert claimed is not None and claimed.rollout_id == rollout.rollout_id
            counts.append(len(trips))
            rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
            with request_key_scope("spans"):
                await store.add_many_spans([make_span(rid, aid, n, name=f"s{n}") for n in range(1, 4)])
            counts.append(len(trips) - sum(counts))
            with request_key_scope("finish"):
                await store.update_attempt(rid, aid, status="succeeded")
            counts.append(len(trips) - sum(counts))
            monkeypatch.undo()
            assert (await store.get_rollout_by_id(rid)).status == "succeeded"  # type: ignore[union-attr]
            assert len(await store.query_spans(rid)) == 3
            return counts
        finally:
            await store.close()

    assert anyio.run(main) == [8, 8, 8], trips  # were 10, 10 and 11
