"""Schema v3 (rollout start/end times as indexed columns): a v2 file is migrated in place, and queries sorted by
those times are then answered in SQL, in the engine's order (``None`` first ascending, ties by insertion)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import List

import pytest
from agentlightning.store.backend import WithoutQueryPushdown
from agentlightning.store.engine import EngineLightningStore
from agentlightning.store.query import Sort, Where
from agentlightning_sqlite import SqliteBackend
from agentlightning_sqlite.codec import encode
from agentlightning_sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from sqlite_records import make_rollout

pytestmark = pytest.mark.anyio

END_TIMES = [30.0, None, 10.0, 30.0, None, 20.5]


def _write_v2_file(path: Path) -> List[str]:
    """A file as release v2 wrote it: rollouts with and without end times, some tied."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for step in MIGRATIONS[:2]:
        for statement in step:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    ids = []
    for n, end_time in enumerate(END_TIMES):
        status = "queuing" if end_time is None else "succeeded"
        rollout = make_rollout(f"ro-{n}", status=status, end_time=end_time)
        conn.execute(
            "INSERT INTO rollouts (rollout_id, status, data) VALUES (?, ?, ?)",
            (rollout.rollout_id, status, encode(rollout)),
        )
        ids.append(rollout.rollout_id)
    conn.execute("COMMIT")
    conn.close()
    return ids


async def test_v2_file_gets_time_columns_and_sorted_queries_in_sql(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    ids = _write_v2_file(path)
    backend = SqliteBackend(path)
    try:
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 3
        columns = dict(conn.execute("SELECT rollout_id, end_time FROM rollouts").fetchall())
        assert [columns[i] for i in ids] == END_TIMES
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"rollouts_by_start_time", "rollouts_by_end_time"} <= indexes
        conn.close()

        # answered in SQL (not declined), in the engine's order
        rows, total = backend.run_sync(
            lambda tx: tx.select("rollouts", Where(), Sort("end_time", "desc"), -1, 0), write=False
        )
        assert total == len(ids)
        assert [r.rollout_id for r in rows] == ["ro-0", "ro-3", "ro-5", "ro-2", "ro-1", "ro-4"]

        pushed = EngineLightningStore(backend, watchdog_interval=None)
        python = EngineLightningStore(WithoutQueryPushdown(backend), watchdog_interval=None)
        for order in ("asc", "desc"):
            for sort_by in ("end_time", "start_time"):
                for status_in in (None, ["succeeded"]):
                    a = await pushed.query_rollouts(status_in=status_in, sort_by=sort_by, sort_order=order, limit=3)
                    b = await python.query_rollouts(status_in=status_in, sort_by=sort_by, sort_order=order, limit=3)
                    assert (a.items, a.total) == (b.items, b.total)
    finally:
        backend.close()


async def test_times_follow_rollout_writes(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "store.db")
    store = EngineLightningStore(backend, watchdog_interval=None)
    try:
        rollout = await store.enqueue_rollout({"q": 1})
        await store.update_rollout(rollout.rollout_id, status="succeeded")
        stored = await store.get_rollout_by_id(rollout.rollout_id)
        assert stored is not None and stored.end_time is not None
        conn = sqlite3.connect(tmp_path / "store.db")
        row = conn.execute("SELECT start_time, end_time FROM rollouts").fetchone()
        conn.close()
        assert row == (stored.start_time, stored.end_time)
    finally:
        backend.close()
