"""The store's tables in one PostgreSQL schema, and their versioned forward migrations.

The version lives in the one-row table ``agl_schema_version``. ``MIGRATIONS[i]`` takes a schema from version ``i``
to ``i + 1``; an older schema is migrated when a store opens it, in one transaction under an advisory lock (stores
opening the same schema at once migrate it once; PostgreSQL DDL is transactional, so a failed migration leaves the
schema as it was). A schema of a version above :data:`SCHEMA_VERSION` was written by a newer release and is refused
untouched. Records are stored as JSON text (``data`` columns) next to the columns that queries filter and sort on.
"""

from __future__ import annotations

from typing import Any, Tuple

from agentlightning.store.errors import StoreUnavailableError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "read_version", "lock_key"]

_V1: Tuple[str, ...] = (
    """CREATE TABLE rollouts (
        pk BIGSERIAL PRIMARY KEY,
        rollout_id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        start_time DOUBLE PRECISION,
        end_time DOUBLE PRECISION,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX rollouts_by_status ON rollouts (status, pk)",
    """CREATE TABLE attempts (
        rollout_id TEXT NOT NULL,
        attempt_id TEXT NOT NULL,
        sequence_id BIGINT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (rollout_id, attempt_id)
    )""",
    "CREATE INDEX attempts_by_sequence ON attempts (rollout_id, sequence_id)",
    "CREATE TABLE queue (pos BIGSERIAL PRIMARY KEY, rollout_id TEXT NOT NULL UNIQUE)",
    "CREATE TABLE span_counters (rollout_id TEXT PRIMARY KEY, next_id BIGINT NOT NULL)",
    """CREATE TABLE spans (
        pk BIGSERIAL PRIMARY KEY,
        rollout_id TEXT NOT NULL,
        attempt_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        sequence_id BIGINT NOT NULL,
        data TEXT NOT NULL,
        UNIQUE (rollout_id, attempt_id, span_id)
    )""",
    """CREATE TABLE resources (
        pk BIGSERIAL PRIMARY KEY,
        resources_id TEXT NOT NULL UNIQUE,
        written BIGINT NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX resources_by_written ON resources (written)",
    "CREATE TABLE workers (pk BIGSERIAL PRIMARY KEY, worker_id TEXT NOT NULL UNIQUE, data TEXT NOT NULL)",
)

_V2: Tuple[str, ...] = (
    # Idempotency keys of the requests whose writes were applied, with their results and answers: any store
    # server of the database replays the answer to a retry instead of applying the write again.
    "CREATE TABLE request_keys "
    "(key TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL, status INTEGER, body BYTEA, result BYTEA)",
    "CREATE INDEX request_keys_by_created ON request_keys (created)",
)

_V3: Tuple[str, ...] = (
    # Rollouts in the order of a page read by key (``start_time_from`` sorted by start time, ties by insertion):
    # such a page starts at its key and reads only its own rows, and the total is counted from this index alone.
    "CREATE INDEX rollouts_by_start_time ON rollouts (start_time ASC NULLS FIRST, pk)",
)

_LZ4_COLUMNS = (("spans", "data"), ("request_keys", "body"), ("request_keys", "result"))

_V4: Tuple[str, ...] = tuple(
    # Large values (span records above ~2 KB, recorded answers) compressed with lz4 rather than pglz: about half the
    # database's CPU per span written. Values already stored keep their compression and read as before. A server
    # without lz4 (built without it, or before PostgreSQL 14) keeps pglz.
    f"DO $$ BEGIN EXECUTE 'ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4'; "
    "EXCEPTION WHEN feature_not_supported OR syntax_error THEN NULL; END $$"
    for table, column in _LZ4_COLUMNS
)

MIGRATIONS: Tuple[Tuple[str, ...], ...] = (_V1, _V2, _V3, _V4)
SCHEMA_VERSION = len(MIGRATIONS)


def lock_key(schema: str, purpose: str) -> str:
    """The text whose ``hashtext`` keys an advisory lock of ``purpose`` on ``schema``."""
    return f"agentlightning:{schema}:{purpose}"


def read_version(cur: Any, schema: str) -> int:
    """The schema's version (0: no store tables yet)."""
    cur.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'agl_schema_version'",
        (schema,),
    )
    if cur.fetchone() is None:
        cur.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'rollouts'", (schema,)
        )
        if cur.fetchone() is not None:
            raise StoreUnavailableError(
                f"PostgreSQL schema {schema!r} holds a 'rollouts' table that no agentlightning store made"
            )
        return 0
    cur.execute("SELECT version FROM agl_schema_version")
    row = cur.fetchone()
    return 0 if row is None else int(row[0])


def migrate(conn: Any, schema: str) -> int:
    """Create or upgrade the store's tables in ``schema`` (the connection's search path); returns the old version."""
    with conn.transaction():
        cur = conn.cursor()
        # the lock first: two processes creating one new schema at once would otherwise collide on its name
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock_key(schema, "migrate"),))
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        version = read_version(cur, schema)
        if version > SCHEMA_VERSION:
            raise StoreUnavailableError(
                f"PostgreSQL schema {schema!r} is at store version {version}, newer than this release's "
                f"{SCHEMA_VERSION}: upgrade agentlightning-postgres"
            )
        if version == 0:
            cur.execute("CREATE TABLE agl_schema_version (version INTEGER NOT NULL)")
            cur.execute("INSERT INTO agl_schema_version VALUES (0)")
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                cur.execute(statement)
        if version < SCHEMA_VERSION:
            cur.execute("UPDATE agl_schema_version SET version = %s", (SCHEMA_VERSION,))
        return version
