"""The on-disk schema: forward migrations, the version check and opening a file safely.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a database from version ``i`` to
``i + 1``; a file of a version above :data:`SCHEMA_VERSION` was written by a newer release and is refused untouched.
Records are stored as JSON (``data`` columns) next to the few columns the store's queries filter and sort on.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Tuple

from agentlightning.store.errors import StoreCorruptError, StoreUnavailableError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "FINISHED_SQL", "check_file", "read_version", "migrate"]

SQLITE_HEADER = b"SQLite format 3\x00"

FINISHED_SQL = "('failed', 'succeeded', 'cancelled')"
"""Finished rollout statuses as an SQL list; their spans are what retention may evict."""

_V1: Tuple[str, ...] = (
    # ``pk`` gives insertion order; span_count/span_bytes let retention pick and account evictions cheaply.
    """CREATE TABLE rollouts (
        pk INTEGER PRIMARY KEY,
        rollout_id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        span_count INTEGER NOT NULL DEFAULT 0,
        span_bytes INTEGER NOT NULL DEFAULT 0,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX rollouts_by_status ON rollouts (status, pk)",
    f"CREATE INDEX rollouts_evictable ON rollouts (pk) WHERE span_count > 0 AND status IN {FINISHED_SQL}",
    """CREATE TABLE attempts (
        rollout_id TEXT NOT NULL,
        attempt_id TEXT NOT NULL,
        sequence_id INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (rollout_id, attempt_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX attempts_by_sequence ON attempts (rollout_id, sequence_id)",
    "CREATE TABLE queue (pos INTEGER PRIMARY KEY, rollout_id TEXT NOT NULL UNIQUE)",
    "CREATE TABLE span_counters (rollout_id TEXT PRIMARY KEY, next_id INTEGER NOT NULL) WITHOUT ROWID",
    """CREATE TABLE spans (
        pk INTEGER PRIMARY KEY,
        rollout_id TEXT NOT NULL,
        attempt_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        sequence_id INTEGER NOT NULL,
        size INTEGER NOT NULL,
        data TEXT NOT NULL,
        UNIQUE (rollout_id, attempt_id, span_id)
    )""",
    "CREATE INDEX spans_by_rollout ON spans (rollout_id, sequence_id)",
    "CREATE INDEX spans_by_attempt ON spans (rollout_id, attempt_id, sequence_id)",
    """CREATE TABLE resources (
        pk INTEGER PRIMARY KEY,
        resources_id TEXT NOT NULL UNIQUE,
        written INTEGER NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX resources_by_written ON resources (written)",
    "CREATE TABLE workers (pk INTEGER PRIMARY KEY, worker_id TEXT NOT NULL UNIQUE, data TEXT NOT NULL)",
    """CREATE TABLE evictions (
        rollout_id TEXT PRIMARY KEY,
        spans INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        evicted_at REAL NOT NULL
    ) WITHOUT ROWID""",
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO counters (name, value) VALUES ('spans', 0), ('span_bytes', 0), ('evicted_rollouts', 0), "
    "('evicted_spans', 0)",
)

MIGRATIONS: Tuple[Tuple[str, ...], ...] = (_V1,)
"""Forward migrations; append a step (never edit a released one) to change the schema."""

SCHEMA_VERSION = len(MIGRATIONS)


def check_file(path: str) -> None:
    """Refuse, without touching anything, a location that cannot hold the store or a file that is not SQLite."""
    parent = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(parent):
        kind = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise StoreUnavailableError(f"cannot open SQLite store {path!r}: parent directory {parent!r} {kind}")
    if os.path.isdir(path):
        raise StoreUnavailableError(f"cannot open SQLite store {path!r}: it is a directory")
    if not os.path.exists(path):
        if not os.access(parent, os.W_OK):
            raise StoreUnavailableError(f"cannot create SQLite store {path!r}: directory {parent!r} is not writable")
        return
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreUnavailableError(f"cannot read SQLite store {path!r}: {exc.strerror or exc}") from exc
    if header and header != SQLITE_HEADER:
        raise StoreCorruptError(f"{path!r} is not an SQLite database (unexpected file header); refusing to touch it")


def read_version(conn: sqlite3.Connection, path: str) -> int:
    """The schema version of an open database; refuses files this release cannot read."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        raise StoreCorruptError(f"{path!r} is not a readable SQLite database: {exc}") from exc
    if version > SCHEMA_VERSION:
        raise StoreCorruptError(
            f"{path!r} has store schema version {version}, newer than this agentlightning-sqlite understands "
            f"({SCHEMA_VERSION}); upgrade agentlightning-sqlite to open it"
        )
    if version == 0 and conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
        raise StoreCorruptError(f"{path!r} is an SQLite database of something else (it has tables but no store schema)")
    return version


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the schema up to date inside the caller's write transaction; returns the version found."""
    found = read_version(conn, path)
    for step in MIGRATIONS[found:]:
        for statement in step:
            conn.execute(statement)
    if found < SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return found
