"""SqliteBackend: opening files (good and bad), schema versions, locking, change tokens, threads, closing."""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from pathlib import Path

import anyio
import pytest
from agentlightning.store.errors import StoreClosedError, StoreCorruptError, StoreUnavailableError
from agentlightning_sqlite import SqliteBackend
from agentlightning_sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from sqlite_records import make_rollout


def test_new_file_gets_wal_and_current_schema(db_path: Path) -> None:
    backend = SqliteBackend(db_path, synchronous="FULL")
    backend.close()
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"rollouts_by_status", "rollouts_evictable", "attempts_by_sequence"} <= names
    assert not {"spans_by_rollout", "spans_by_attempt"} & names  # dropped by v2: spans keep their UNIQUE index only
    conn.close()


def test_reopen_keeps_data(db_path: Path) -> None:
    backend = SqliteBackend(db_path)
    backend.run_sync(lambda tx: tx.insert_rollouts([make_rollout("a")]), write=True)
    backend.close()
    again = SqliteBackend(db_path)
    assert again.run_sync(lambda tx: tx.get_rollout("a"), write=False).rollout_id == "a"
    again.close()


def test_empty_file_is_initialised(db_path: Path) -> None:
    db_path.write_bytes(b"")
    SqliteBackend(db_path).close()
    assert db_path.read_bytes().startswith(b"SQLite format 3\x00")


@pytest.mark.parametrize(
    "content",
    [b"hello, this is a text file\n" * 20, b"SQLite", b"\x00" * 4096],
    ids=["text", "short", "zeros"],
)
def test_not_a_database_is_refused_untouched(db_path: Path, content: bytes) -> None:
    db_path.write_bytes(content)
    with pytest.raises(StoreCorruptError, match="not an SQLite database"):
        SqliteBackend(db_path)
    assert db_path.read_bytes() == content
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]


def test_foreign_sqlite_database_is_refused_untouched(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(StoreCorruptError, match="something else"):
        SqliteBackend(db_path)
    assert db_path.read_bytes() == before


@pytest.mark.parametrize(
    ("user_version", "journal", "tables"),
    [
        *[(version, journal, ["people (name TEXT)"]) for version in (1, 2, 3, 7) for journal in ("delete", "wal")],
        (1, "delete", ["rollouts (id INTEGER)", "spans (id INTEGER)"]),  # some of the store's table names
    ],
)
def test_foreign_database_with_a_user_version_is_refused_untouched(
    db_path: Path, user_version: int, journal: str, tables: list[str]
) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA journal_mode = {journal}")
    for table in tables:
        conn.execute(f"CREATE TABLE {table}")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(StoreCorruptError, match="something else") as refused:
        SqliteBackend(db_path)
    assert "upgrade" not in str(refused.value)
    assert db_path.read_bytes() == before
    assert not (db_path.parent / (db_path.name + "-wal")).exists() or journal == "wal"


def test_newer_schema_is_refused_untouched(db_path: Path) -> None:
    SqliteBackend(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(StoreCorruptError, match="newer"):
        SqliteBackend(db_path)
    assert db_path.read_bytes() == before


def test_older_schema_is_migrated_forward(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentlightning_sqlite import schema

    SqliteBackend(db_path).close()
    step = ("CREATE TABLE extra_table (x INTEGER)",)
    monkeypatch.setattr(schema, "MIGRATIONS", (*MIGRATIONS, step))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    SqliteBackend(db_path).close()
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert conn.execute("SELECT COUNT(*) FROM extra_table").fetchone()[0] == 0
    conn.close()


def test_unusable_locations_are_clear_os_errors(tmp_path: Path) -> None:
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    with pytest.raises(StoreUnavailableError, match="not a directory") as info:
        SqliteBackend(a_file / "store.db")
    assert isinstance(info.value, OSError)
    with pytest.raises(StoreUnavailableError, match="does not exist"):
        SqliteBackend(tmp_path / "missing" / "store.db")
    with pytest.raises(StoreUnavailableError, match="is a directory"):
        SqliteBackend(tmp_path)
    assert a_file.read_text() == "x"


def test_bad_options(db_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SqliteBackend(db_path, synchronous="OFF")
    with pytest.raises(ValueError):
        SqliteBackend(db_path, busy_timeout=-1)


def test_lock_held_past_deadline_raises_unavailable(db_path: Path) -> None:
    backend = SqliteBackend(db_path, busy_timeout=0.05, lock_timeout=0.3)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailableError, match="stayed locked"):
            backend.run_sync(lambda tx: tx.queue_push(["a"]), write=True)
        # reads are not blocked by a writer under WAL
        assert backend.run_sync(lambda tx: tx.count_rollouts(), write=False) == 0
    finally:
        other.execute("ROLLBACK")
        other.close()
    backend.run_sync(lambda tx: tx.queue_push(["a"]), write=True)
    backend.close()


def test_short_lock_is_waited_out(db_path: Path) -> None:
    backend = SqliteBackend(db_path, busy_timeout=0.01, lock_timeout=30)
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO queue (rollout_id) VALUES ('first')")
    timer = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    timer.start()
    try:
        backend.run_sync(lambda tx: tx.queue_push(["second"]), write=True)
    finally:
        timer.join()
        other.close()
    assert backend.run_sync(lambda tx: tx.queue_pop(5), write=True) == ["first", "second"]
    backend.close()


def test_change_token_sees_other_connections(db_path: Path) -> None:
    mine = SqliteBackend(db_path)
    theirs = SqliteBackend(db_path)  # stands in for another process
    token = mine.change_token()
    assert mine.change_token() == token
    theirs.run_sync(lambda tx: tx.queue_push(["x"]), write=True)
    after_theirs = mine.change_token()
    assert after_theirs != token
    mine.run_sync(lambda tx: tx.queue_push(["y"]), write=True)
    assert mine.change_token() != after_theirs
    mine.run_sync(lambda tx: tx.count_rollouts(), write=False)
    assert mine.change_token() == mine.change_token()
    mine.close()
    theirs.close()


def test_one_connection_per_thread_and_dead_threads_reaped(backend: SqliteBackend) -> None:
    seen = []

    def work() -> None:
        seen.append(backend.run_sync(lambda tx: tx._conn, write=False))  # kept alive: ids stay unique

    threads = [threading.Thread(target=work) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 5
    late = threading.Thread(target=work)  # a new thread's connection reaps those of dead threads
    late.start()
    late.join()
    assert len(backend._conns) <= 2  # the main thread's and the late one's


def test_concurrent_threads_write_atomically(backend: SqliteBackend) -> None:
    backend.run_sync(lambda tx: tx.queue_push([f"r{i}" for i in range(200)]), write=True)
    claimed: list = []  # type: ignore[type-arg]

    def worker() -> None:
        while True:
            got = backend.run_sync(lambda tx: tx.queue_pop(3), write=True)
            if not got:
                return
            claimed.extend(got)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(f"r{i}" for i in range(200))


@pytest.mark.anyio
async def test_run_from_event_loops(backend: SqliteBackend) -> None:
    await backend.run(lambda tx: tx.insert_rollouts([make_rollout("a")]), write=True)
    assert (await backend.run(lambda tx: tx.get_rollout("a"), write=False)).rollout_id == "a"
    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(functools.partial(backend.run, lambda tx, i=i: tx.queue_push([f"q{i}"]), write=True))
    assert len(await backend.run(lambda tx: tx.queue_pop(100), write=True)) == 20


@pytest.mark.anyio
async def test_closed_backend_refuses(db_path: Path) -> None:
    backend = SqliteBackend(db_path)
    backend.close()
    backend.close()
    with pytest.raises(StoreClosedError):
        backend.run_sync(lambda tx: None, write=False)
    with pytest.raises(StoreClosedError):
        await backend.run(lambda tx: None, write=True)


def test_statistics(backend: SqliteBackend) -> None:
    stats = backend.statistics()
    files = [backend.path + suffix for suffix in ("", "-wal")]
    assert stats["file_size_bytes"] == sum(os.path.getsize(f) for f in files if os.path.exists(f)) > 0
    assert stats["evicted_rollouts"] == stats["evicted_spans"] == stats["total_span_bytes"] == 0


def test_checkpoint_thread_ends_with_close_or_garbage(db_path: Path) -> None:
    import gc

    def checkpoint_threads() -> int:
        return sum(1 for t in threading.enumerate() if t.name == "agentlightning-sqlite-checkpoint" and t.is_alive())

    before = checkpoint_threads()
    closed = SqliteBackend(db_path)
    dropped = SqliteBackend(db_path)
    assert checkpoint_threads() == before + 2
    closed.close()
    thread = dropped._checkpointer._thread
    del dropped
    gc.collect()
    assert thread is not None
    thread.join(timeout=10)
    assert checkpoint_threads() == before


def test_wal_is_checkpointed_in_the_background(db_path: Path) -> None:
    from sqlite_records import make_span

    backend = SqliteBackend(db_path)
    for batch in range(70):  # > 64 commits: the checkpoint thread is poked
        spans = [make_span("r", "a", batch * 10 + i + 1, payload="x" * 2000) for i in range(10)]
        backend.run_sync(lambda tx, spans=spans: tx.insert_spans(spans), write=True)
    deadline = time.monotonic() + 10
    while os.path.getsize(db_path) < 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.getsize(db_path) >= 1_000_000  # the spans reached the database file, not only the WAL
    backend.close()
