"""Schema v2 (fewer pages per span write): a v1 file is migrated in place with nothing lost; span order and totals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from agentlightning.store.errors import SpansEvictedError
from agentlightning_sqlite import SqliteLightningStore
from agentlightning_sqlite.codec import encode
from agentlightning_sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from sqlite_records import make_attempt, make_rollout, make_span

pytestmark = pytest.mark.anyio


def _write_v1_file(path: Path) -> dict[str, list[str]]:
    """A file as release v1 wrote it: two finished rollouts and a running one, with spans and counters."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN")
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    span_ids: dict[str, list[str]] = {}
    total = total_bytes = 0
    for n, status in enumerate(("succeeded", "failed", "running")):
        rollout = make_rollout(f"ro-{n}", status=status)
        attempt = make_attempt(rollout.rollout_id, 1, status="succeeded" if status != "running" else "running")
        conn.execute(
            "INSERT INTO attempts VALUES (?, ?, 1, ?)", (rollout.rollout_id, attempt.attempt_id, encode(attempt))
        )
        count = size = 0
        for seq in (3, 1, 2):  # stored out of order: reads sort by sequence id
            data = encode(make_span(rollout.rollout_id, attempt.attempt_id, seq))
            conn.execute(
                "INSERT INTO spans (rollout_id, attempt_id, span_id, sequence_id, size, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (rollout.rollout_id, attempt.attempt_id, f"{seq:016x}", seq, len(data), data),
            )
            count, size = count + 1, size + len(data)
        conn.execute(
            "INSERT INTO rollouts (rollout_id, status, span_count, span_bytes, data) VALUES (?, ?, ?, ?, ?)",
            (rollout.rollout_id, status, count, size, encode(rollout)),
        )
        conn.execute("INSERT INTO span_counters VALUES (?, 4)", (rollout.rollout_id,))
        span_ids[rollout.rollout_id] = [f"{seq:016x}" for seq in (1, 2, 3)]
        total, total_bytes = total + count, total_bytes + size
    conn.execute("UPDATE counters SET value = ? WHERE name = 'spans'", (total,))
    conn.execute("UPDATE counters SET value = ? WHERE name = 'span_bytes'", (total_bytes,))
    conn.execute("COMMIT")
    conn.close()
    return span_ids


async def test_v1_file_is_migrated_in_place_with_nothing_lost(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    span_ids = _write_v1_file(path)
    store = SqliteLightningStore(path, watchdog_interval=None)
    try:
        for rollout_id, ids in span_ids.items():
            assert [s.span_id for s in await store.query_spans(rollout_id)] == ids
        stats = await store.statistics()
        assert stats["total_spans"] == 9
        assert await store.get_next_span_sequence_id("ro-2", "ro-2-at1") == 4  # the sequence counter is kept
        await store.add_span(make_span("ro-2", "ro-2-at1", 5))
        assert [s.sequence_id for s in await store.query_spans("ro-2")] == [1, 2, 3, 5]
        assert (await store.statistics())["total_spans"] == 10
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    totals = dict(
        (r, (c, b)) for r, c, b in conn.execute("SELECT rollout_id, span_count, span_bytes FROM span_counters")
    )
    assert {r: c for r, (c, _) in totals.items()} == {"ro-0": 3, "ro-1": 3, "ro-2": 4}
    assert all(b > 0 for _, b in totals.values())
    flags = conn.execute("SELECT span_count, span_bytes FROM rollouts").fetchall()
    assert flags == [(1, 0)] * 3  # v2: a "has stored spans" flag only
    conn.close()

    # retention works on the migrated totals: the oldest finished rollout goes first, the running one never
    limited = SqliteLightningStore(path, max_spans=7, watchdog_interval=None)
    try:
        assert await limited.compact() == (1, 3)
        with pytest.raises(SpansEvictedError):
            await limited.query_spans("ro-0")
        assert len(await limited.query_spans("ro-1")) == 3
        assert (await limited.statistics())["total_spans"] == 7
    finally:
        await limited.close()


async def test_spans_come_back_in_sequence_then_insertion_order(tmp_path: Path) -> None:
    store = SqliteLightningStore(tmp_path / "order.db", watchdog_interval=None)
    try:
        first = await store.start_rollout({"x": 1})
        rollout_id, attempt_id = first.rollout_id, first.attempt.attempt_id
        # span ids sort against sequence order, and two spans share sequence id 2
        for seq, span_id in ((3, "a"), (2, "z"), (1, "m"), (2, "b")):
            await store.add_span(make_span(rollout_id, attempt_id, seq, span_id=span_id))
        expected = ["m", "z", "b", "a"]
        assert [s.span_id for s in await store.query_spans(rollout_id)] == expected
        assert [s.span_id for s in await store.query_spans(rollout_id, attempt_id=attempt_id)] == expected
    finally:
        await store.close()


async def test_span_totals_follow_writes_duplicates_and_evictions(tmp_path: Path) -> None:
    path = tmp_path / "totals.db"
    store = SqliteLightningStore(path, max_spans=4, watchdog_interval=None)
    try:
        done = await store.start_rollout({"x": 1})
        spans = [make_span(done.rollout_id, done.attempt.attempt_id, i + 1) for i in range(3)]
        await store.add_many_spans(spans)
        assert await store.add_span(spans[0]) is None  # a duplicate counts nothing
        await store.update_attempt(done.rollout_id, done.attempt.attempt_id, status="succeeded")
        running = await store.start_rollout({"x": 2})
        await store.add_span(make_span(running.rollout_id, running.attempt.attempt_id, 1))
        assert (await store.statistics())["total_spans"] == 4
        await store.add_span(make_span(running.rollout_id, running.attempt.attempt_id, 2))  # 5 > 4: evict `done`
        assert (await store.statistics())["total_spans"] == 2
        # a reserved sequence id survives the totals' updates (they share the row)
        assert await store.get_next_span_sequence_id(running.rollout_id, running.attempt.attempt_id) == 3
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    rows = dict(
        (r, (c, f))
        for r, c, f in conn.execute(
            "SELECT c.rollout_id, c.span_count, r.span_count FROM span_counters c JOIN rollouts r USING (rollout_id)"
        )
    )
    assert rows == {done.rollout_id: (0, 0), running.rollout_id: (2, 1)}
    conn.close()


def _tracked_and_summed(path: Path) -> tuple[bool, tuple[int, int], tuple[int, int]]:
    conn = sqlite3.connect(path)
    tracked = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'span_totals_on_%'").fetchone()[0] == 2
    counters = dict(conn.execute("SELECT name, value FROM counters"))
    summed = conn.execute("SELECT SUM(span_count), SUM(span_bytes) FROM span_counters").fetchone()
    conn.close()
    return tracked, (counters["spans"], counters["span_bytes"]), tuple(summed)


async def test_span_totals_are_tracked_once_a_retention_store_opens_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tracked.db"
    plain = SqliteLightningStore(path, watchdog_interval=None)
    try:
        first = await _finished(plain, 3)
        stats = await plain.statistics()
        assert stats["total_spans"] == 3 and stats["total_span_bytes"] > 0  # summed at read time
        tracked, _, summed = _tracked_and_summed(path)
        assert not tracked and summed[0] == 3

        # a store with limits starts tracking (counting what is already there); the plain store, still open,
        # keeps the tracked totals exact from then on, and the limits see its spans
        limited = SqliteLightningStore(path, max_spans=5, watchdog_interval=None)
        try:
            tracked, counters, summed = _tracked_and_summed(path)
            assert tracked and counters == summed == (3, stats["total_span_bytes"])
            second = await _finished(plain, 2)
            tracked, counters, summed = _tracked_and_summed(path)
            assert counters == summed and counters[0] == 5
            await _finished(limited, 1)  # 6 > 5: the oldest finished rollout goes
            with pytest.raises(SpansEvictedError):
                await limited.query_spans(first)
            assert len(await plain.query_spans(second)) == 2
            for store in (plain, limited):
                stats = await store.statistics()
                assert stats["total_spans"] == 3 and stats["evicted_spans"] == 3
            _, counters, summed = _tracked_and_summed(path)
            assert counters == summed and counters[0] == 3
        finally:
            await limited.close()
    finally:
        await plain.close()
    reopened = SqliteLightningStore(path, max_spans=5, watchdog_interval=None)  # tracking again is a no-op
    try:
        assert (await reopened.statistics())["total_spans"] == 3
    finally:
        await reopened.close()


async def _finished(store: SqliteLightningStore, spans: int) -> str:
    attempted = await store.start_rollout({"x": 1})
    for i in range(spans):
        await store.add_span(make_span(attempted.rollout_id, attempted.attempt.attempt_id, i + 1))
    await store.update_attempt(attempted.rollout_id, attempted.attempt.attempt_id, status="succeeded")
    return attempted.rollout_id
