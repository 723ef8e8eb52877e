"""PostgreSQL-specific behaviour: URLs, schema versions, claims and wake-ups across stores, SQL queries."""

from __future__ import annotations

from typing import Any, Dict, List

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


class RoundTrips:
    """Counts the round trips of the store's connections from libpq's protocol trace: each ``Sync`` (the end of an
    extended-protocol statement, or of a pipeline) and each simple ``Query`` waits for the database once."""

    def __init__(self, monkeypatch: Any, folder: Any) -> None:
        from agentlightning_postgres import transaction

        self._path = folder / "protocol.trace"
        self._file = open(self._path, "w")  # noqa: SIM115 - closed by stop()
        self._traced: List[Any] = []
        self._seen = 0
        original = transaction.PostgresTransaction.__init__

        def traced(tx: Any, conn: Any, *args: Any, **kwargs: Any) -> None:
            if conn.pgconn not in self._traced:
                from psycopg import pq

                conn.pgconn.trace(self._file.fileno())
                conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
                self._traced.append(conn.pgconn)
            original(tx, conn, *args, **kwargs)

        monkeypatch.setattr(transaction.PostgresTransaction, "__init__", traced)

    def _trips(self) -> List[List[str]]:
        """Every round trip so far, as the statements the client sent in it (SQL text; a prepared statement's name
        where it was not parsed again)."""
        self._file.flush()
        trips: List[List[str]] = [[]]
        for line in self._path.read_text().splitlines():
            fields = line.split("\t", 3)
            if len(fields) < 3 or fields[0] != "F":
                continue
            message, args = fields[2], (fields[3].strip() if len(fields) > 3 else "")
            if message == "Query":
                trips[-1].append(args.strip('"'))
                trips.append([])
            elif message == "Parse":
                trips[-1].append(args.split('" "', 1)[-1].rsplit('"', 1)[0])
            elif message == "Bind" and not args.startswith('"" ""'):
                trips[-1].append(args.split()[1].strip('"'))
            elif message == "Sync":
                trips.append([])
        return trips[:-1]

    def take(self) -> List[List[str]]:
        """The round trips since the last call."""
        trips = self._trips()
        new, self._seen = trips[self._seen :], len(trips)
        return new

    def stop(self) -> None:
        for pgconn in self._traced:
            pgconn.untrace()
        self._file.close()


@pytest.mark.parametrize(
    ("pipeline", "inline", "expected"),
    [("on", "off", [4, 3, 3]), ("off", "off", [6, 5, 5]), ("off", "on", [6, 5, 5])],
    ids=["pipelines", "threads", "inline"],
)
def test_a_rollout_costs_few_round_trips(
    schema_url: str, monkeypatch: Any, tmp_path: Any, pipeline: str, inline: str, expected: List[int]
) -> None:
    """Round trips to the database (libpq's protocol trace) of a rollout's three writes as a store server makes
    them (each under an idempotency key): with pipelines a transaction's ``BEGIN`` and write lock go with its first
    statement (without, in one round trip of their own), claiming a rollout from the queue reads it and its latest
    attempt in the same statement, a rollout read brings its latest attempt too, later reads in the transaction
    reuse them, the writes whose outcome is not needed back go in one statement with the idempotency key's insert
    (the span counter's with the spans'), no savepoint is taken, and the NOTIFY of a finish travels with the COMMIT
    (with pipelines, the key's insert too). An inline write opens its transaction on its own, waiting briefly for the
    lock."""
    from agentlightning.store.request_keys import request_key_scope
    from agentlightning.testing.store_suite import make_span

    async def main() -> List[int]:
        store = PostgresLightningStore(schema_url, watchdog_interval=None, pipeline=pipeline, inline=inline)
        trips = RoundTrips(monkeypatch, tmp_path)
        try:
            rollout = await store.enqueue_rollout({"n": 1})
            trips.take()
            with request_key_scope("dequeue"):
                claimed = await store.dequeue_rollout(worker_id="w")
            assert claimed is not None and claimed.rollout_id == rollout.rollout_id
            rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
            taken = [trips.take()]
            with request_key_scope("spans"):
                await store.add_many_spans([make_span(rid, aid, n, name=f"s{n}") for n in range(1, 4)])
            taken.append(trips.take())
            with request_key_scope("finish"):
                await store.update_attempt(rid, aid, status="succeeded")
            taken.append(trips.take())
            counts = [len(t) for t in taken]
            assert (await store.get_rollout_by_id(rid)).status == "succeeded"  # type: ignore[union-attr]
            assert len(await store.query_spans(rid)) == 3
            lock = "SELECT pg_advisory_xact_lock(hashtext('agentlightning:"
            if inline == "on":
                lock = "SET LOCAL lock_timeout = 5; " + lock
            for trip in taken:  # the opening first, the commit last
                if pipeline == "on":  # with the first statement, and the key's insert with the commit
                    assert trip[0][0] == "BEGIN" and trip[0][1].startswith(lock) and len(trip[0]) > 2, trip
                    assert "INSERT INTO request_keys" in trip[-1][0] and trip[-1][-1] == "COMMIT", trip
                else:  # one simple query each
                    assert trip[0] == [trip[0][0]] and trip[0][0].startswith("BEGIN; " + lock), trip
                    assert trip[-1][0].endswith("COMMIT"), trip
            assert "pg_notify" in " ".join(taken[2][-1]), taken[2]
            assert counts == expected, taken
            return counts
        finally:
            trips.stop()
            await store.close()

    anyio.run(main)  # were 12, 10 and 11, then 10, 8 and 8 (savepoints counted)


def test_a_read_that_sends_nothing_costs_no_round_trip(
    schema_url: str, monkeypatch: Any, tmp_path: Any, transaction_mode: Dict[str, str]
) -> None:
    """A transaction whose function sends no statement opens no transaction on the database at all (an inline write
    does: it tries for the lock first)."""
    from agentlightning_postgres.backend import PostgresBackend as Backend
    from agentlightning_postgres.url import parse_url as split

    conninfo, options = split(schema_url)
    backend = Backend(conninfo, schema=options["schema"], **transaction_mode)
    trips = RoundTrips(monkeypatch, tmp_path)
    pipelines = transaction_mode["pipeline"] == "on"
    try:
        assert anyio.run(lambda: backend.run(lambda tx: 42, write=False)) == 42
        assert backend.run_sync(lambda tx: 43, write=True) == 43
        assert trips.take() == []
        assert anyio.run(lambda: backend.run(lambda tx: tx.count_rollouts(), write=False)) == 0
        assert len(trips.take()) == (2 if pipelines else 3)  # BEGIN (with the count), COMMIT
    finally:
        trips.stop()
        backend.close()


def _schema_at_version(schema_url: str, version: int) -> tuple[str, str]:
    """The URL's schema created as the first ``version`` migrations left it; its connection string and name."""
    import psycopg
    from agentlightning_postgres.schema import MIGRATIONS

    conninfo, options = parse_url(schema_url)
    schema = options["schema"]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("CREATE TABLE agl_schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO agl_schema_version VALUES (%s)", (version,))
        for statement in (s for migration in MIGRATIONS[:version] for s in migration):
            conn.execute(statement)
    return conninfo, schema


def test_a_version_2_schema_is_migrated_with_its_rollouts_kept(schema_url: str) -> None:
    """A schema written before the start-time index (version 2) gains it when a store opens it; nothing is lost."""
    import psycopg

    conninfo, schema = _schema_at_version(schema_url, 2)

    async def main() -> None:
        old = PostgresLightningStore(schema_url, watchdog_interval=None)
        try:
            ids = [(await old.enqueue_rollout({"i": i})).rollout_id for i in range(3)]
        finally:
            await old.close()
        with psycopg.connect(conninfo, autocommit=True) as conn:  # as version 2 left it
            conn.execute(f'SET search_path TO "{schema}"')
            conn.execute("DROP INDEX rollouts_by_start_time")
            conn.execute("UPDATE agl_schema_version SET version = 2")
        store = PostgresLightningStore(schema_url, watchdog_interval=None)
        try:
            page = await store.query_rollouts(sort_by="start_time", start_time_from=0.0, limit=10)
            assert [r.rollout_id for r in page.items] == ids and page.total == 3
        finally:
            await store.close()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            assert conn.execute("SELECT version FROM agl_schema_version").fetchall() == [(SCHEMA_VERSION,)]
            indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,)).fetchall()
            assert ("rollouts_by_start_time",) in indexes

    anyio.run(main)


def test_a_version_3_schema_is_migrated_to_lz4_with_its_spans_kept(schema_url: str) -> None:
    """A schema written before lz4 compression (version 3) keeps its spans, compressed with pglz, readable as they
    were; the spans written after the migration are compressed with lz4."""
    import psycopg
    from agentlightning.testing.store_suite import make_span

    conninfo, schema = _schema_at_version(schema_url, 3)

    def big_span(rid: str, aid: str, n: int) -> Any:
        span = make_span(rid, aid, n, name=f"s{n}")
        span.attributes.update({f"key.{i}": f"value {i} of span {n}" for i in range(200)})  # well above 2 KB
        return span

    def compressions() -> List[Any]:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            rows = conn.execute("SELECT pg_column_compression(data) FROM spans ORDER BY pk").fetchall()
            return [row[0] for row in rows]

    async def main() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:  # spans written on the tables of version 3
            conn.execute(f'SET search_path TO "{schema}"')
            conn.execute("UPDATE agl_schema_version SET version = %s", (SCHEMA_VERSION,))
        old = PostgresLightningStore(schema_url, watchdog_interval=None)
        try:
            rollout = await old.start_rollout({"n": 1})
            rid, aid = rollout.rollout_id, rollout.attempt.attempt_id
            written = await old.add_many_spans([big_span(rid, aid, n) for n in (1, 2)])
        finally:
            await old.close()
        with psycopg.connect(conninfo, autocommit=True) as conn:  # back to version 3
            conn.execute(f'SET search_path TO "{schema}"')
            conn.execute("UPDATE agl_schema_version SET version = 3")
        assert compressions() == ["pglz", "pglz"]
        store = PostgresLightningStore(schema_url, watchdog_interval=None)
        try:
            assert list(await store.query_spans(rid)) == list(written)
            written = [*written, *(await store.add_many_spans([big_span(rid, aid, 3)]))]
            assert list(await store.query_spans(rid)) == written
        finally:
            await store.close()
        assert compressions() == ["pglz", "pglz", "lz4"]
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            assert conn.execute("SELECT version FROM agl_schema_version").fetchall() == [(SCHEMA_VERSION,)]

    anyio.run(main)


def test_a_page_read_by_key_reads_the_start_time_index_from_the_key(schema_url: str) -> None:
    """A page of ``start_time_from`` sorted by start time (``agl export``'s pages) walks the start-time index from
    its key and stops after the page, and its total is counted from that index alone: neither reads the records of
    the rollouts after the key. The answer is the one the filters give."""
    import psycopg
    from agentlightning.store.query import AT_LEAST, Condition, Sort, Where
    from agentlightning.types.core import Rollout

    conninfo, options = parse_url(schema_url)
    rollouts = [Rollout(rollout_id=f"r{i:05d}", input={"i": i}, start_time=float(i // 2)) for i in range(6000)]
    backend = PostgresBackend(conninfo, schema=options["schema"])
    try:
        backend.run_sync(lambda tx: tx.insert_rollouts(rollouts), write=True)
        with psycopg.connect(conninfo, autocommit=True) as conn:  # statistics and visibility, as autovacuum keeps them
            conn.execute(f'SET search_path TO "{options["schema"]}"')
            conn.execute("VACUUM ANALYZE rollouts")
        where = Where(must=(Condition("start_time", AT_LEAST, 2900.0),))
        statements: List[Any] = []

        def page(tx: Any) -> Any:
            run = tx._all

            def traced(sql: str, params: Any = ()) -> Any:
                statements.append((sql, params))
                return run(sql, params)

            tx._all = traced
            return tx.select("rollouts", where, Sort("start_time", "asc"), 50, 0)

        items, total = backend.run_sync(page, write=False)
        expected = [r for r in rollouts if r.start_time >= 2900.0]
        assert [r.rollout_id for r in items] == [r.rollout_id for r in expected[:50]] and total == len(expected)
        assert len(statements) == 1
        query, params = statements[0]
        explained = backend.run_sync(lambda tx: tx._all(f"EXPLAIN {query}", params), write=False)
        plan = "\n".join(row[0] for row in explained)
        assert "Index Scan using rollouts_by_start_time" in plan, plan
        assert "Index Only Scan using rollouts_by_start_time" in plan, plan
        assert "Sort" not in plan and "WindowAgg" not in plan and "Seq Scan" not in plan, plan
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("conninfo", "local"),
    [
        ("postgresql://u@127.0.0.1:5432/db", True),
        ("postgresql://u@localhost/db", True),
        ("postgresql://u@[::1]:5432/db", True),
        ("postgresql:///db?host=/run/postgresql", True),
        ("postgresql:///db", True),
        ("host=127.0.0.2 dbname=db", True),
        ("postgresql://u@db.example:5432/db", False),
        ("postgresql://u@10.0.0.5/db", False),
        ("postgresql://u@127.0.0.1,db.example/db", False),
        ("host=db.example hostaddr=127.0.0.1 dbname=db", True),
    ],
)
def test_a_database_on_this_host_is_told_apart(conninfo: str, local: bool, monkeypatch: Any) -> None:
    from agentlightning_postgres.url import database_is_local

    monkeypatch.delenv("PGHOST", raising=False)
    assert database_is_local(conninfo) is local


def test_pghost_names_the_host_of_a_url_without_one(monkeypatch: Any) -> None:
    from agentlightning_postgres.url import database_is_local

    monkeypatch.setenv("PGHOST", "db.example")
    assert not database_is_local("postgresql:///db")
    assert database_is_local("postgresql://u@localhost/db")


def test_pipelines_follow_the_url_option_and_the_host(postgres_url: str) -> None:
    from agentlightning_postgres.url import parse_url as split

    assert split(postgres_url + "?pipeline=on")[1] == {"pipeline": "on"}
    with pytest.raises(ValueError, match="pipeline must be one of auto, on, off, got 'yes'"):
        split(postgres_url + "?pipeline=yes")

    async def modes() -> List[bool]:
        found = []
        for option in ("", "?pipeline=on", "?pipeline=off", "?pipeline=auto"):
            store = PostgresLightningStore(postgres_url + option, watchdog_interval=None)
            found.append(store.backend.pipelines)
            await store.close()
        return found

    assert anyio.run(modes) == [False, True, False, False]  # the test server is on this host


def test_inline_transactions_run_on_the_calling_thread_and_a_waiting_write_goes_to_a_worker(
    schema_url: str,
) -> None:
    """With ``inline=on`` a transaction that need not wait runs on the event loop's thread; a write that finds the
    schema's write lock held (here by another connection) for more than a few milliseconds is handed to a worker
    thread, where it waits for the lock while the event loop goes on."""
    import threading

    import psycopg
    from agentlightning_postgres.schema import lock_key

    conninfo, options = parse_url(schema_url)

    async def main() -> None:
        store = PostgresLightningStore(schema_url, watchdog_interval=None, inline="on", pool_min=3)
        backend = store.backend  # connections to spare: no read waits for one while the write holds its own
        try:
            loop_thread = threading.get_ident()
            assert await backend.run(lambda tx: threading.get_ident(), write=False) == loop_thread
            assert await backend.run(lambda tx: threading.get_ident(), write=True) == loop_thread
            assert backend.inline_handoffs == 0
            holder = psycopg.connect(conninfo, autocommit=True)
            written: List[int] = []

            def write(tx: Any) -> int:
                tx.queue_push(["ro-1"])
                return threading.get_ident()

            async def writer() -> None:
                written.append(await backend.run(write, write=True))

            try:
                holder.execute("BEGIN")
                holder.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock_key(options["schema"], "write"),))
                async with anyio.create_task_group() as tg:
                    tg.start_soon(writer)
                    try:
                        for _ in range(10):  # the loop goes on, and so do reads, while the write waits for the lock
                            await anyio.sleep(0.02)
                            assert await backend.run(lambda tx: tx.queue_contains("ro-1"), write=False) is False
                        assert written == [] and backend.inline_handoffs == 1
                    finally:
                        holder.execute("COMMIT")  # the lock is free: the write goes through
            finally:
                holder.close()
            assert written and written[0] != loop_thread
            assert await backend.run(lambda tx: tx.queue_contains("ro-1"), write=False) is True
            stats = await store.statistics()
            assert (stats["inline_transactions"], stats["inline_handoffs"], stats["pipelines"]) == (True, 1, False)
        finally:
            await store.close()

    anyio.run(main)
