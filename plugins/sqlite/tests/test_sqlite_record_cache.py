"""The per-connection cache of rollouts and attempts: reused only while no other connection commits, never holding
what was rolled back."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import attrs
import pytest
from agentlightning_sqlite import SqliteBackend, SqliteLightningStore
from agentlightning_sqlite.batching import Write
from agentlightning_sqlite.transaction import MAX_CACHED, MAX_CACHED_BYTES, RecordCache
from sqlite_records import make_attempt, make_rollout, make_span

pytestmark = pytest.mark.anyio


def _seed(backend: SqliteBackend) -> None:
    def fn(tx: Any) -> None:
        tx.insert_rollouts([make_rollout("ro-1", status="running")])
        tx.insert_attempt(make_attempt("ro-1", 1, status="running"))

    backend.run_sync(fn, write=True)


def _status(backend: SqliteBackend) -> tuple[str, str]:
    def fn(tx: Any) -> tuple[str, str]:  # a write transaction: it reads through the cache
        return tx.get_rollout("ro-1").status, tx.get_attempt("ro-1", "ro-1-at1").status

    return backend.run_sync(fn, write=True)


def test_a_rolled_back_write_leaves_nothing_in_the_cache(db_path: Path) -> None:
    backend = SqliteBackend(db_path)
    try:
        _seed(backend)
        assert _status(backend) == ("running", "running")  # both now cached

        def failing(tx: Any) -> None:
            tx.update_rollout(attrs.evolve(tx.get_rollout("ro-1"), status="failed"))
            tx.update_attempt(attrs.evolve(tx.get_attempt("ro-1", "ro-1-at1"), status="failed"))
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            backend.run_sync(failing, write=True)
        assert _status(backend) == ("running", "running")
    finally:
        backend.close()


def test_a_commit_of_another_connection_empties_the_cache(db_path: Path) -> None:
    first, second = SqliteBackend(db_path), SqliteBackend(db_path)  # two connections, as two processes would have
    try:
        _seed(first)
        assert _status(first) == ("running", "running")

        def finish(tx: Any) -> None:
            tx.update_rollout(attrs.evolve(tx.get_rollout("ro-1"), status="succeeded"))
            tx.update_attempt(attrs.evolve(tx.get_attempt("ro-1", "ro-1-at1"), status="succeeded"))

        second.run_sync(finish, write=True)
        assert _status(first) == ("succeeded", "succeeded")
    finally:
        first.close()
        second.close()


async def test_a_span_after_another_store_finished_the_attempt_keeps_it_finished(tmp_path: Path) -> None:
    path = tmp_path / "two.db"
    runner, algorithm = SqliteLightningStore(path, watchdog_interval=None), SqliteLightningStore(path)
    try:
        attempted = await runner.start_rollout({"x": 1})
        rollout_id, attempt_id = attempted.rollout_id, attempted.attempt.attempt_id
        await runner.add_span(make_span(rollout_id, attempt_id, 1))  # the runner's connection caches both records
        await algorithm.update_attempt(rollout_id, attempt_id, status="succeeded")
        await runner.add_span(make_span(rollout_id, attempt_id, 2))  # its heartbeat must start from "succeeded"
        for store in (runner, algorithm):
            rollout = await store.get_rollout_by_id(rollout_id)
            assert rollout is not None and rollout.status == "succeeded"
            assert rollout.attempt.status == "succeeded"  # type: ignore[attr-defined]
            assert len(await store.query_spans(rollout_id)) == 2
    finally:
        await runner.close()
        await algorithm.close()


def test_a_batch_that_rolls_back_entirely_leaves_nothing_in_the_cache(db_path: Path) -> None:
    backend = SqliteBackend(db_path)
    try:
        _seed(backend)
        assert _status(backend) == ("running", "running")
        seen: List[str] = []

        def finish(tx: Any) -> None:  # succeeds in its savepoint, absorbed for the writes after it...
            tx.update_rollout(attrs.evolve(tx.get_rollout("ro-1"), status="succeeded"))

        def interrupt(tx: Any) -> None:  # ...then the whole batch rolls back (not an Exception: nothing contains it)
            seen.append(tx.get_rollout("ro-1").status)
            raise KeyboardInterrupt

        conn = backend._connection()  # the connection (and cache) run_sync uses on this thread
        with backend._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            with pytest.raises(KeyboardInterrupt):
                backend._execute_batch(conn, [Write(finish), Write(interrupt)])
        assert seen == ["succeeded"]  # a later write of a batch sees the earlier ones
        assert _status(backend) == ("running", "running")  # neither on disk nor in the cache
    finally:
        backend.close()


def test_a_write_rolled_back_to_its_savepoint_leaves_nothing_in_the_cache(db_path: Path) -> None:
    backend = SqliteBackend(db_path)
    try:
        _seed(backend)
        assert _status(backend) == ("running", "running")

        def finish(tx: Any) -> None:
            tx.update_rollout(attrs.evolve(tx.get_rollout("ro-1"), status="succeeded"))

        def failing(tx: Any) -> None:
            tx.update_attempt(attrs.evolve(tx.get_attempt("ro-1", "ro-1-at1"), status="failed"))
            raise ValueError("boom")

        writes = [Write(finish), Write(failing)]
        conn = backend._connection()
        with backend._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            backend._execute_batch(conn, writes)
        assert isinstance(writes[1].error, ValueError)
        assert _status(backend) == ("succeeded", "running")
    finally:
        backend.close()


def test_the_cache_is_bounded() -> None:
    cache = RecordCache()

    class Tx:
        _rollouts = {f"ro-{i}": make_rollout(f"ro-{i}") for i in range(MAX_CACHED + 10)}
        _attempts: dict[Any, Any] = {}
        _sizes: dict[Any, int] = {}
        _counters = {f"ro-{i}": [i, None] for i in range(MAX_CACHED + 10)}

    cache.absorb(Tx())  # type: ignore[arg-type]
    assert (
        len(cache.rollouts) == MAX_CACHED and "ro-0" not in cache.rollouts and f"ro-{MAX_CACHED + 9}" in cache.rollouts
    )
    assert len(cache.counters) == MAX_CACHED and "ro-0" not in cache.counters


def test_the_cache_is_bounded_by_bytes(db_path: Path) -> None:
    """Large records (an 8 MiB input) do not pile up: what the cache keeps stays under MAX_CACHED_BYTES."""
    backend = SqliteBackend(db_path)
    big = "x" * (1024 * 1024)
    count = MAX_CACHED_BYTES // len(big) + 8
    try:
        for i in range(count):
            backend.run_sync(
                lambda tx, i=i: tx.insert_rollouts([attrs.evolve(make_rollout(f"ro-{i}"), input=big)]), write=True
            )
        records = backend._connection().records
        assert 0 < records.cached_bytes <= MAX_CACHED_BYTES
        assert len(records.rollouts) < count
        assert f"ro-{count - 1}" in records.rollouts, "the newest stay"
        again = backend.run_sync(lambda tx: tx.get_rollout("ro-0"), write=True)
        assert again is not None and again.input == big, "an evicted record is read from the file"
    finally:
        backend.close()
