"""A full disk and the write-ahead log: writes fail cleanly, the store recovers once space returns, and the log
stays small under steady writing.

A full disk is simulated without privileges with ``RLIMIT_FSIZE`` (the largest file this process may write, SIGXFSZ
ignored): SQLite's writes past it fail as they do on a full disk (EFBIG instead of ENOSPC: SQLITE_IOERR instead of
SQLITE_FULL, both StoreUnavailableError). The limit applies to each file, not to their sum as a disk would.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from agentlightning.store.errors import StoreUnavailableError
from agentlightning.testing.store_suite import make_span
from agentlightning_sqlite import SqliteLightningStore
from agentlightning_sqlite.backend import JOURNAL_SIZE_LIMIT

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX"),
]

_PAYLOAD = "y" * 4000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def file_size_limit() -> Iterator[Any]:
    """``set(bytes)`` caps the size of files this process writes (None: no cap); restored afterwards."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def set_limit(limit: Any) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft if limit is None else limit, hard))

    try:
        yield set_limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def _wal(path: Path) -> int:
    try:
        return os.path.getsize(str(path) + "-wal")
    except OSError:
        return 0


async def test_writes_fail_cleanly_on_a_full_disk_and_resume_when_space_returns(
    tmp_path: Path, file_size_limit: Any
) -> None:
    path = tmp_path / "full.db"
    store = SqliteLightningStore(path, watchdog_interval=None)
    try:
        await store.enqueue_rollout("x")
        claimed = await store.dequeue_rollout()
        assert claimed is not None
        rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
        file_size_limit(max(_wal(path), os.path.getsize(path)) + 2 * 1024 * 1024)
        stored, failures = 0, 0
        for seq in range(1, 5_000):
            try:
                await store.add_span(make_span(rid, aid, seq, attributes={"x": _PAYLOAD}))
                stored += 1
            except StoreUnavailableError as exc:
                assert "cannot be written" in str(exc)
                failures += 1
                if failures == 5:
                    break
        assert failures == 5, "the simulated disk never filled up"
        assert len(await store.query_spans(rid)) == stored, "reads keep working and every acknowledged span is there"
        file_size_limit(None)
        for seq in range(10_000, 10_050):
            await store.add_span(make_span(rid, aid, seq, attributes={"x": _PAYLOAD}))
        assert len(await store.query_spans(rid)) == stored + 50
    finally:
        file_size_limit(None)
        await store.close()
    reopened = SqliteLightningStore(path, watchdog_interval=None)
    try:
        assert len(await reopened.query_spans(rid)) == stored + 50
    finally:
        await reopened.close()


async def test_checkpoint_truncates_a_grown_log(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "wal.db"
    store = SqliteLightningStore(path, watchdog_interval=None)
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        await store.enqueue_rollout("x")
        claimed = await store.dequeue_rollout()
        assert claimed is not None
        rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
        reader.execute("BEGIN")  # a reader holding a snapshot keeps the log from restarting while it grows
        reader.execute("SELECT COUNT(*) FROM spans").fetchone()
        seq = 0
        while _wal(path) <= JOURNAL_SIZE_LIMIT:
            await store.add_many_spans(
                [make_span(rid, aid, seq + i, attributes={"x": _PAYLOAD * 4}) for i in range(50)]
            )
            seq += 50
        reader.execute("COMMIT")
        store.backend.checkpoint()
        assert _wal(path) <= JOURNAL_SIZE_LIMIT // 4, "a checkpoint with no reader left truncates the log"
        await store.add_span(make_span(rid, aid, seq + 1))
        assert len(await store.query_spans(rid)) == seq + 1
    finally:
        reader.close()
        await store.close()


def test_a_failed_checkpoint_is_retried_without_new_writes(tmp_path: Path) -> None:
    """After a checkpoint failed (a full disk), the thread tries again on its next pass even though the log did not
    change since: the store recovers by itself once space returns."""
    import sqlite3
    import threading

    from agentlightning_sqlite.checkpoint import Checkpointer

    path = str(tmp_path / "retry.db")
    sqlite3.connect(path).close()
    attempts: list[str] = []
    recovered = threading.Event()
    opened: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        if not attempts:
            attempts.append("full")
            raise sqlite3.OperationalError("database or disk is full")
        attempts.append("ok")
        recovered.set()
        opened.append(sqlite3.connect(path, check_same_thread=False))
        return opened[-1]

    checkpointer = Checkpointer(path, connect, period=0.01, truncate_bytes=1 << 20)
    checkpointer.start()
    try:
        checkpointer.poke()
        assert recovered.wait(30), f"no retry after the failed checkpoint: {attempts}"
    finally:
        checkpointer.stop()
    assert attempts[:2] == ["full", "ok"]
