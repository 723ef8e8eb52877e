"""Schema v5 (a span's heartbeat kept on its rollout's span_counters row): a v4 file is migrated in place with its data
as it was, and every reader (another connection, another store, the timeout scan) sees the attempts' heartbeats as
the attempt rows would have held them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Dict, List, Tuple

import attrs
import pytest
from agentlightning.store.engine import EngineLightningStore
from agentlightning.types.core import Attempt, RolloutConfig
from agentlightning_sqlite import SqliteBackend
from agentlightning_sqlite.codec import encode
from agentlightning_sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from sqlite_records import make_attempt, make_rollout, make_span

pytestmark = pytest.mark.anyio

TABLES = ("rollouts", "attempts", "span_counters", "spans", "counters", "queue", "evictions")


class Clock:
    """A manual clock for the stores under test."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _dump(path: Path) -> Dict[str, List[Tuple[object, ...]]]:
    """Every row of the store's tables, by table (the columns of schema v4 only)."""
    conn = sqlite3.connect(path)
    try:
        out = {}
        for table in TABLES:
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            columns = [c for c in columns if c not in ("heartbeat_attempt", "heartbeat_time")]
            sql = f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1, 2"  # noqa: S608 - the test's own names
            out[table] = conn.execute(sql).fetchall()
        return out
    finally:
        conn.close()


def _write_v4_file(path: Path) -> Tuple[List[Attempt], list]:  # type: ignore[type-arg]
    """A file as release v4 wrote it: a running rollout with two attempts (heartbeats in their JSON) and two spans."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for step in MIGRATIONS[:4]:
        for statement in step:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 4")
    rollout = make_rollout("ro-1", status="running")
    conn.execute(
        "INSERT INTO rollouts (rollout_id, status, start_time, data) VALUES (?, ?, ?, ?)",
        (rollout.rollout_id, rollout.status, rollout.start_time, encode(rollout)),
    )
    attempts = [
        attrs.evolve(make_attempt("ro-1", 1, status="timeout"), last_heartbeat_time=5.25),
        attrs.evolve(make_attempt("ro-1", 2, status="running"), last_heartbeat_time=7.5),
    ]
    for attempt in attempts:
        conn.execute(
            "INSERT INTO attempts (rollout_id, attempt_id, sequence_id, data) VALUES (?, ?, ?, ?)",
            (attempt.rollout_id, attempt.attempt_id, attempt.sequence_id, encode(attempt)),
        )
    spans = [make_span("ro-1", "ro-1-at1", 1), make_span("ro-1", "ro-1-at2", 2)]
    sizes = 0
    for span in spans:
        data = encode(span)
        sizes += len(data)
        conn.execute(
            "INSERT INTO spans (rollout_id, attempt_id, span_id, sequence_id, size, data) VALUES (?, ?, ?, ?, ?, ?)",
            (span.rollout_id, span.attempt_id, span.span_id, span.sequence_id, len(data), data),
        )
    conn.execute(
        "INSERT INTO span_counters (rollout_id, next_id, span_count, span_bytes) VALUES ('ro-1', 3, 2, ?)", (sizes,)
    )
    conn.execute("UPDATE rollouts SET span_count = 1")
    conn.execute("COMMIT")
    conn.close()
    return attempts, spans


async def test_v4_file_is_migrated_in_place_and_its_data_kept(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    attempts, spans = _write_v4_file(path)
    before = _dump(path)
    clock = Clock()
    backend = SqliteBackend(path)
    other = None
    try:
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        assert conn.execute("SELECT heartbeat_attempt, heartbeat_time FROM span_counters").fetchall() == [(None, None)]
        conn.close()
        assert _dump(path) == before  # nothing rewritten
        store = EngineLightningStore(backend, watchdog_interval=None, clock=clock)
        assert list((await store.query_attempts("ro-1")).items) == attempts
        assert list((await store.query_spans("ro-1")).items) == spans

        # a new span continues the sequence and heartbeats the running attempt through span_counters
        stored = await store.add_span_with_next_sequence_id(make_span("ro-1", "ro-1-at2", 0, span_id="f" * 16))
        assert stored is not None and stored.sequence_id == 3
        after = _dump(path)
        assert after["attempts"] == before["attempts"]  # the attempt's row is not rewritten
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT heartbeat_attempt, heartbeat_time FROM span_counters").fetchall() == [
            ("ro-1-at2", clock.now)
        ]
        conn.close()
        expected = [attempts[0], attrs.evolve(attempts[1], last_heartbeat_time=clock.now)]
        assert list((await store.query_attempts("ro-1")).items) == expected
        other = SqliteBackend(path)  # another connection, nothing cached
        assert (
            list((await EngineLightningStore(other, watchdog_interval=None).query_attempts("ro-1")).items) == expected
        )
    finally:
        backend.close()
        if other is not None:
            other.close()


async def test_heartbeats_read_back_as_upstream_stores_them(tmp_path: Path) -> None:
    """Span heartbeats, explicit ``last_heartbeat_time`` writes (earlier ones and None included) and status changes
    read back the same from the writing store and from a second store on the file (which caches nothing of them)."""
    clock = Clock()
    writer_backend = SqliteBackend(tmp_path / "store.db")
    reader_backend = SqliteBackend(tmp_path / "store.db")
    try:
        writer = EngineLightningStore(writer_backend, watchdog_interval=None, clock=clock)
        reader = EngineLightningStore(reader_backend, watchdog_interval=None, clock=clock)
        started = await writer.start_rollout({"q": 1}, worker_id="w1")
        rollout_id, attempt_id = started.rollout_id, started.attempt.attempt_id

        async def seen() -> List[Tuple[object, object, object]]:
            out = []
            for store in (writer, reader):
                attempt = await store.get_latest_attempt(rollout_id)
                rollout = await store.get_rollout_by_id(rollout_id)
                assert attempt is not None and rollout is not None
                out.append((attempt.status, attempt.last_heartbeat_time, rollout.status))
            assert out[0] == out[1]
            return out[:1]

        async def span(at: float, seq: int) -> None:
            clock.now = at
            await writer.add_span(make_span(rollout_id, attempt_id, seq))

        assert await seen() == [("preparing", None, "preparing")]
        await span(1010.0, 1)  # the first span: preparing -> running, the attempt's row is written
        assert await seen() == [("running", 1010.0, "running")]
        await span(1020.0, 2)
        await span(1030.5, 3)
        assert await seen() == [("running", 1030.5, "running")]
        await writer.update_attempt(rollout_id, attempt_id, last_heartbeat_time=1001.0)  # earlier: taken as given
        assert await seen() == [("running", 1001.0, "running")]
        await span(1040.0, 4)
        await writer.update_attempt(rollout_id, attempt_id, last_heartbeat_time=None)
        assert await seen() == [("running", None, "running")]
        await span(1050.0, 5)
        clock.now = 1060.0
        await writer.update_attempt(rollout_id, attempt_id, status="succeeded")
        assert await seen() == [("succeeded", 1050.0, "succeeded")]
        await span(1070.0, 6)  # a late span of a finished attempt still records its heartbeat
        assert await seen() == [("succeeded", 1070.0, "succeeded")]
    finally:
        writer_backend.close()
        reader_backend.close()


async def test_spans_of_two_attempts_keep_both_heartbeats(tmp_path: Path) -> None:
    """A span row holds one attempt's heartbeat: spans of an older attempt (still sending after its retry began) and of
    the new one both keep theirs."""
    clock = Clock()
    backend = SqliteBackend(tmp_path / "store.db")
    reader_backend = SqliteBackend(tmp_path / "store.db")
    try:
        store = EngineLightningStore(backend, watchdog_interval=None, clock=clock)
        reader = EngineLightningStore(reader_backend, watchdog_interval=None, clock=clock)
        first = await store.start_rollout({"q": 1}, worker_id="w1")
        rollout_id, old = first.rollout_id, first.attempt.attempt_id
        clock.now = 1010.0
        await store.add_span(make_span(rollout_id, old, 1, span_id="a" * 16))
        clock.now = 1020.0
        await store.add_span(make_span(rollout_id, old, 2, span_id="b" * 16))
        new = (await store.start_attempt(rollout_id, worker_id="w2")).attempt.attempt_id
        for n, (attempt_id, at) in enumerate([(new, 1030.0), (old, 1040.0), (new, 1050.0), (old, 1060.0)]):
            clock.now = at
            await store.add_span(make_span(rollout_id, attempt_id, 3 + n, span_id=f"{n + 1:016x}"))
        for each in (store, reader):
            beats = {a.attempt_id: a.last_heartbeat_time for a in (await each.query_attempts(rollout_id)).items}
            assert beats == {old: 1060.0, new: 1050.0}
    finally:
        backend.close()
        reader_backend.close()


async def test_the_timeout_scan_reads_span_heartbeats(tmp_path: Path) -> None:
    """Another store's scan for unresponsive attempts sees the heartbeats that spans recorded on span_counters."""
    clock = Clock()
    writer_backend = SqliteBackend(tmp_path / "store.db")
    scanner_backend = SqliteBackend(tmp_path / "store.db")
    try:
        writer = EngineLightningStore(writer_backend, watchdog_interval=None, clock=clock)
        scanner = EngineLightningStore(scanner_backend, watchdog_interval=None, clock=clock)
        started = await writer.start_rollout({"q": 1}, config=RolloutConfig(unresponsive_seconds=10.0))
        rollout_id, attempt_id = started.rollout_id, started.attempt.attempt_id
        for seq, at in enumerate([1005.0, 1012.0, 1019.0], start=1):
            clock.now = at
            await writer.add_span(make_span(rollout_id, attempt_id, seq))
        clock.now = 1028.0  # 9 s after the last span, 23 s after the first heartbeat the attempt's row holds
        await scanner.scan_unhealthy_rollouts()
        attempt = await scanner.get_latest_attempt(rollout_id)
        assert attempt is not None and attempt.status == "running"
        clock.now = 1030.0
        await scanner.scan_unhealthy_rollouts()
        attempt = await writer.get_latest_attempt(rollout_id)
        assert attempt is not None and (attempt.status, attempt.last_heartbeat_time) == ("unresponsive", 1019.0)
    finally:
        writer_backend.close()
        scanner_backend.close()


async def test_sequence_ids_allocated_by_two_stores_interleaved_stay_unique(tmp_path: Path) -> None:
    """A connection allocates sequence ids from what it remembers of span_counters only while no other connection
    committed: two stores on one file, taking turns, hand out each id once, in order."""
    backends = [SqliteBackend(tmp_path / "store.db"), SqliteBackend(tmp_path / "store.db")]
    try:
        stores = [EngineLightningStore(b, watchdog_interval=None) for b in backends]
        started = await stores[0].start_rollout({"q": 1})
        rollout_id, attempt_id = started.rollout_id, started.attempt.attempt_id
        got = []
        for n, turn in enumerate([0, 0, 1, 0, 1, 1, 0]):
            span = make_span(rollout_id, attempt_id, 0, span_id=f"{n + 1:016x}")
            stored = await stores[turn].add_span_with_next_sequence_id(span)
            assert stored is not None
            got.append(stored.sequence_id)
            got.append(await stores[1 - turn].get_next_span_sequence_id(rollout_id, attempt_id))
        assert got == list(range(1, 15))
        spans = (await stores[1].query_spans(rollout_id)).items
        assert [s.sequence_id for s in spans] == got[::2]
    finally:
        for backend in backends:
            backend.close()
