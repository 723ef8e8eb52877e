"""The on-disk schema: forward migrations, the version check and opening a file safely.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a database from version ``i`` to
``i + 1``; a file of an older version is migrated in place, in one write transaction, when a store opens it (the
statements either all commit or all roll back, leaving the file as it was); a file of a version above
:data:`SCHEMA_VERSION` was written by a newer release and is refused untouched.
Records are stored as JSON (``data`` columns) next to the few columns the store's queries filter and sort on.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Tuple

from agentlightning.store.errors import StoreCorruptError, StoreUnavailableError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "FINISHED_SQL",
    "check_file",
    "read_version",
    "migrate",
    "span_totals",
    "track_span_totals",
]

SQLITE_HEADER = b"SQLite format 3\x00"

APPLICATION_ID = 0x41474C53
"""``PRAGMA application_id`` of store files ("AGLS"; files of earlier releases have 0)."""

FINISHED_SQL = "('failed', 'succeeded', 'cancelled')"
"""Finished rollout statuses as an SQL list; their spans are what retention may evict."""

_V1: Tuple[str, ...] = (
    # ``pk`` gives insertion order; span_count/span_bytes let retention pick and account evictions cheaply (v2
    # changes their meaning, see _V2).
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

_V2: Tuple[str, ...] = (
    # Fewer pages rewritten per span write (each dirty page is one more WAL frame at commit):
    # - spans keep only their UNIQUE (rollout_id, attempt_id, span_id) index: every span query and the retention
    #   delete filter on its prefix, and the reads sort by (sequence_id, pk) themselves;
    # - a rollout's span totals move from its (wide, partially indexed) rollouts row to its narrow span_counters row,
    #   which a span write with a new sequence id touches anyway; ``rollouts.span_count`` becomes the flag "has
    #   stored spans" (1 or 0, kept by triggers from span_counters.span_count, so only a rollout's first span and
    #   its eviction write it) that ``rollouts_evictable`` filters on; ``rollouts.span_bytes`` is unused (kept at 0).
    # - the store-wide totals in ``counters`` ('spans', 'span_bytes') are no longer written by every span write: they
    #   are the sum of the span_counters rows, kept up to date by triggers only once a store with retention limits
    #   (which reads them on every write) opened the file (see :func:`track_span_totals`).
    "DROP INDEX spans_by_rollout",
    "DROP INDEX spans_by_attempt",
    "ALTER TABLE span_counters ADD COLUMN span_count INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE span_counters ADD COLUMN span_bytes INTEGER NOT NULL DEFAULT 0",
    "INSERT INTO span_counters (rollout_id, next_id, span_count, span_bytes) "
    "SELECT rollout_id, 1, span_count, span_bytes FROM rollouts WHERE span_count > 0 "
    "ON CONFLICT (rollout_id) DO UPDATE SET span_count = excluded.span_count, span_bytes = excluded.span_bytes",
    "UPDATE rollouts SET span_count = (span_count > 0), span_bytes = 0 WHERE span_count > 1 OR span_bytes != 0",
    # the flag follows the totals inside SQLite: no statement of its own on the hot path
    "CREATE TRIGGER rollout_has_spans_on_insert AFTER INSERT ON span_counters WHEN new.span_count > 0 BEGIN "
    "UPDATE rollouts SET span_count = 1 WHERE rollout_id = new.rollout_id; END",
    "CREATE TRIGGER rollout_has_spans_on_update AFTER UPDATE OF span_count ON span_counters "
    "WHEN (old.span_count > 0) != (new.span_count > 0) BEGIN "
    "UPDATE rollouts SET span_count = (new.span_count > 0) WHERE rollout_id = new.rollout_id; END",
)

_V3: Tuple[str, ...] = (
    # Queries sorted by a rollout's start or end time are answered in SQL (the progress line pages the succeeded
    # rollouts by end time): the two times get columns, filled from the records (whose JSON carries them), and
    # indexes; (status, end_time) serves "the succeeded ones by end time" without a sort.
    "ALTER TABLE rollouts ADD COLUMN start_time REAL",
    "ALTER TABLE rollouts ADD COLUMN end_time REAL",
    "UPDATE rollouts SET start_time = json_extract(data, '$.start_time'), end_time = json_extract(data, '$.end_time')",
    "CREATE INDEX rollouts_by_start_time ON rollouts (start_time)",
    "CREATE INDEX rollouts_by_end_time ON rollouts (status, end_time)",
)

_V4: Tuple[str, ...] = (
    # Idempotency keys of the requests whose writes were applied, with their results and answers: a store server
    # replays the answer to a retry (after a restart, or from another server process) instead of applying the
    # write again. One B-tree, no index on the time: a write adds one page at most; expiry (at most once a minute)
    # scans the table.
    "CREATE TABLE request_keys (key TEXT PRIMARY KEY, created REAL NOT NULL, status INTEGER, body BLOB, result BLOB) "
    "WITHOUT ROWID",
)

_V5: Tuple[str, ...] = (
    # The heartbeat of a span write moves to the rollout's span_counters row, which the write updates anyway (sequence
    # id, span totals), instead of rewriting the attempt's JSON row: one page fewer in every span write's commit.
    # While ``heartbeat_attempt`` names an attempt of the rollout, that attempt's ``last_heartbeat_time`` is
    # ``heartbeat_time`` (whatever its JSON says); writing the attempt's row folds the time into the JSON and clears
    # the pair. NULL (every row of an older file): the JSON holds the time.
    "ALTER TABLE span_counters ADD COLUMN heartbeat_attempt TEXT",
    "ALTER TABLE span_counters ADD COLUMN heartbeat_time REAL",
)

MIGRATIONS: Tuple[Tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5)
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
        if version == 0:
            if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                raise StoreCorruptError(
                    f"{path!r} is an SQLite database of something else (it has tables but no store schema); "
                    "refusing to touch it"
                )
            return version
        foreign = _foreign(conn)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        raise StoreCorruptError(f"{path!r} is not a readable SQLite database: {exc}") from exc
    if foreign:
        raise StoreCorruptError(
            f"{path!r} is an SQLite database of something else (user_version {version}, but {foreign}); "
            "refusing to touch it"
        )
    if version > SCHEMA_VERSION:
        raise StoreCorruptError(
            f"{path!r} has store schema version {version}, newer than this agentlightning-sqlite understands "
            f"({SCHEMA_VERSION}); upgrade agentlightning-sqlite to open it"
        )
    return version


_OWN_COLUMNS = {
    "rollouts": {"pk", "rollout_id", "status", "data"},
    "attempts": {"rollout_id", "attempt_id", "sequence_id", "data"},
    "queue": {"pos", "rollout_id"},
    "span_counters": {"rollout_id", "next_id"},
    "spans": {"pk", "rollout_id", "attempt_id", "span_id", "sequence_id", "data"},
    "resources": {"pk", "resources_id", "data"},
    "workers": {"pk", "worker_id", "data"},
    "counters": {"name", "value"},
}
"""Tables and columns every schema version has had since version 1: a file with a user_version but without them is
another application's database."""


def _foreign(conn: sqlite3.Connection) -> str:
    """Why a database with a non-zero user_version is not a store ("" when it is one). Reads the schema only."""
    application_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    if application_id not in (0, APPLICATION_ID):
        return f"application_id {application_id:#x}"
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = sorted(set(_OWN_COLUMNS) - tables)
    if missing:
        return f"no store table(s) {', '.join(missing)}"
    for table, columns in _OWN_COLUMNS.items():
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if not columns <= present:
            return f"table {table} lacks the store's column(s) {', '.join(sorted(columns - present))}"
    return ""


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the schema up to date inside the caller's write transaction; returns the version found."""
    found = read_version(conn, path)
    if found == 0:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for step in MIGRATIONS[found:]:
        for statement in step:
            conn.execute(statement)
    if found < SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return found


_TRACKING_TRIGGER = "span_totals_on_update"
_TRACKING: Tuple[str, ...] = (
    "CREATE TRIGGER span_totals_on_insert AFTER INSERT ON span_counters "
    "WHEN new.span_count != 0 OR new.span_bytes != 0 BEGIN "
    "UPDATE counters SET value = value + (CASE name WHEN 'spans' THEN new.span_count ELSE new.span_bytes END) "
    "WHERE name IN ('spans', 'span_bytes'); END",
    f"CREATE TRIGGER {_TRACKING_TRIGGER} AFTER UPDATE OF span_count, span_bytes ON span_counters "
    "WHEN new.span_count != old.span_count OR new.span_bytes != old.span_bytes BEGIN "
    "UPDATE counters SET value = value + (CASE name WHEN 'spans' THEN new.span_count - old.span_count "
    "ELSE new.span_bytes - old.span_bytes END) WHERE name IN ('spans', 'span_bytes'); END",
)


def _tracked(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", (_TRACKING_TRIGGER,))
    return row.fetchone() is not None


def track_span_totals(conn: sqlite3.Connection) -> None:
    """Have SQLite keep the store-wide span totals in ``counters`` from now on (inside the caller's write transaction).

    Done once per file, by the first store with retention limits to open it; from then on every writer, whatever its
    own settings, keeps them exact (the triggers are part of the schema every connection reads). Idempotent.
    """
    if _tracked(conn):
        return
    for statement in _TRACKING:
        conn.execute(statement)
    conn.execute(
        "UPDATE counters SET value = (SELECT COALESCE(SUM(CASE counters.name WHEN 'spans' THEN span_count "
        "ELSE span_bytes END), 0) FROM span_counters) WHERE name IN ('spans', 'span_bytes')"
    )


def span_totals(conn: sqlite3.Connection) -> Tuple[int, int]:
    """(spans, bytes of spans) stored: the tracked counters when there are, else summed over the rollouts."""
    if _tracked(conn):
        totals = dict(conn.execute("SELECT name, value FROM counters WHERE name IN ('spans', 'span_bytes')"))
        return int(totals["spans"]), int(totals["span_bytes"])
    row = conn.execute("SELECT COALESCE(SUM(span_count), 0), COALESCE(SUM(span_bytes), 0) FROM span_counters")
    spans, span_bytes = row.fetchone()
    return int(spans), int(span_bytes)
