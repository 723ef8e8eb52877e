"""A background thread that moves the write-ahead log into the database file.

SQLite's automatic checkpoint runs inside whichever commit crosses the threshold, so one unlucky call pays for
copying megabytes and two fsyncs. Here a thread of each backend runs a ``PASSIVE`` checkpoint (which never waits for
readers or writers) after every burst of commits, and once a second when the log changed. The connections keep
SQLite's automatic checkpoint as a safety net at a much larger size, should this thread fall behind.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from typing import Callable, Optional

__all__ = ["Checkpointer"]

logger = logging.getLogger(__name__)


class Checkpointer:
    """Checkpoints ``path``'s WAL from a daemon thread with its own connection (see the module docstring)."""

    def __init__(self, path: str, connect: Callable[[], sqlite3.Connection], *, period: float = 1.0) -> None:
        self._wal = path + "-wal"
        self._connect = connect
        self._period = period
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
                done = state
                try:
                    if conn is None:
                        conn = self._connect()
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # another process checkpointing, a file gone: try again later
                    logger.debug("WAL checkpoint of %s skipped: %s", self._wal, exc)
        finally:
            if conn is not None:
                conn.close()
