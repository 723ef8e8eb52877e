"""A background thread that moves the write-ahead log into the database file.

SQLite's automatic checkpoint runs inside whichever commit crosses the threshold, so one unlucky call pays for
copying megabytes and two fsyncs. Here a thread of each backend runs a ``PASSIVE`` checkpoint (which never waits for
readers or writers) after every burst of commits, and once a second when the log changed. The connections keep
SQLite's automatic checkpoint as a safety net at a larger size, should this thread fall behind.

A passive checkpoint leaves the log file at its size. Once the log has grown past ``truncate_bytes`` (readers holding
old snapshots keep it from restarting, or a burst outran the thread), the thread runs a ``TRUNCATE`` checkpoint,
which waits at most ``TRUNCATE_WAIT_MS`` for readers and shrinks the file to nothing, so the disk space the store needs
stays near the database's own size. A checkpoint that failed (a full disk, a locked file) is tried again on the next
pass even if the log did not change since, so the store recovers by itself once space returns.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from typing import Callable, Optional

__all__ = ["Checkpointer"]

logger = logging.getLogger(__name__)


TRUNCATE_WAIT_MS = 100
"""How long a truncating checkpoint waits for readers (writers wait meanwhile) before it gives up until next time."""


def checkpoint(conn: sqlite3.Connection, wal_path: str, truncate_bytes: int) -> None:
    """A passive checkpoint, then a truncating one if the log file is still larger than ``truncate_bytes``."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    try:
        size = os.path.getsize(wal_path)
    except OSError:
        return
    if size > truncate_bytes:
        conn.execute(f"PRAGMA busy_timeout = {TRUNCATE_WAIT_MS}")
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.execute("PRAGMA busy_timeout = 0")


class Checkpointer:
    """Checkpoints ``path``'s WAL from a daemon thread with its own connection (see the module docstring)."""

    def __init__(
        self, path: str, connect: Callable[[], sqlite3.Connection], *, period: float = 1.0, truncate_bytes: int
    ) -> None:
        self._wal = path + "-wal"
        self._connect = connect
        self._period = period
        self._truncate_bytes = truncate_bytes
        self._wake = threading.Event()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="agentlightning-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Ask for a checkpoint soon (called after a burst of commits; cheap)."""
        self._wake.set()

    def signal_stop(self) -> None:
        """Ask the thread to end, without waiting for it."""
        self._stopping = True
        self._wake.set()

    def stop(self) -> None:
        self.signal_stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _wal_state(self) -> tuple[int, int]:
        try:
            st = os.stat(self._wal)
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)

    def _loop(self) -> None:
        conn: Optional[sqlite3.Connection] = None
        done = self._wal_state()
        try:
            while not self._stopping:
                poked = self._wake.wait(self._period)
                self._wake.clear()
                state = self._wal_state()
                if self._stopping or (not poked and state == done):
                    continue
                try:
                    if conn is None:
                        conn = self._connect()
                    checkpoint(conn, self._wal, self._truncate_bytes)
                    done = self._wal_state()
                except sqlite3.Error as exc:  # a full disk, another process checkpointing: try again next pass
                    done = (-1, -1)
                    logger.debug("WAL checkpoint of %s failed, retrying: %s", self._wal, exc)
        finally:
            if conn is not None:
                conn.close()
