"""PostgresBackend: atomic transactions on a PostgreSQL schema, shared by threads, processes and hosts.

- A :class:`psycopg_pool.ConnectionPool` of synchronous connections: the engine's transactions are synchronous
  functions over a :class:`~.transaction.PostgresTransaction` (a blocking driver call per statement, as the
  engine's protocol requires). For a database on this host ``run`` executes them inline on the calling thread (the
  event loop's) when they need not wait long, as the SQLite store does: a read always, a write when the schema's
  write lock comes within a few milliseconds; anything else, and every transaction with a database on another
  host, runs on a worker thread.
- Write transactions first take a transaction-scoped advisory lock of the schema: the engine's writes read records,
  decide in Python and write them back, so they must not interleave. Writers are thus serialized across every
  process and host (like SQLite's write lock); readers run alongside under ``REPEATABLE READ`` snapshots. The queue
  head is claimed with ``FOR UPDATE SKIP LOCKED`` besides, so a claim never hands one rollout to two workers.
- Few round trips: with pipelines (the default for a database on another host), a transaction's ``BEGIN`` (and a
  write's lock) goes in one pipeline with its first statement, and its last writes (the idempotency key's insert
  carrying the deferred ones), ``NOTIFY`` and ``COMMIT`` in another (see :class:`~.transaction.PostgresTransaction`).
- A write that finished rollouts announces their ids with ``NOTIFY`` (delivered at commit). A listener thread per
  backend ``LISTEN``s and hands the ids to ``on_finished`` (the engine's waiter registry), so ``wait_for_rollouts``
  wakes on finishes made by any process without polling. After a lost listener connection every waiter is woken to
  re-read (notifications sent meanwhile are gone).
- The watchdog's timeout scans run in one process per schema: :meth:`PostgresBackend.lead_watchdog` holds a
  session-level advisory lock on a connection of its own while this process is the one.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, TypeVar

import anyio.to_thread
from agentlightning.store.errors import StoreClosedError, StoreUnavailableError

from .schema import SCHEMA_VERSION, lock_key, migrate
from .transaction import PostgresTransaction, Statement
from .url import check_pipeline_mode, check_schema_name, database_is_local

__all__ = ["PostgresBackend", "NOTIFY_PAYLOAD_BYTES"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

NOTIFY_PAYLOAD_BYTES = 7000
"""Largest NOTIFY payload sent (PostgreSQL's limit is 8000 bytes); more finished ids go in several notifications."""

_BEGIN_READ: List[Statement] = [("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", ())]
"""Opens a read transaction: one snapshot for all its statements."""

INLINE_CONNECTION_WAIT = 0.002
"""Seconds an inline transaction waits for a pooled connection before it goes to a worker thread instead."""

INLINE_LOCK_WAIT_MS = 5
"""Milliseconds an inline write waits for the schema's write lock (another write holds it for a few local round
trips) before it goes to a worker thread instead, which waits as long as it takes."""

LISTEN_POLL_SECONDS = 0.5
"""How often the listener thread checks whether the backend was closed."""


def _rollback(conn: Any) -> None:
    """End the transaction of a failed attempt (a broken connection is left to the pool, which discards it)."""
    try:
        conn.rollback()
    except Exception as exc:  # noqa: BLE001 - the original failure is the one raised
        logger.debug("PostgreSQL store: rollback after a failed transaction failed (%s)", exc)


class _WouldWait(Exception):
    """An inline transaction would have to wait (for a connection, for the write lock): a worker thread runs it."""


def _payloads(ids: List[str]) -> Iterable[str]:
    chunk: List[str] = []
    size = 0
    for rollout_id in ids:
        if chunk and size + len(rollout_id) + 1 > NOTIFY_PAYLOAD_BYTES:
            yield "\n".join(chunk)
            chunk, size = [], 0
        chunk.append(rollout_id)
        size += len(rollout_id.encode("utf-8")) + 1
    if chunk:
        yield "\n".join(chunk)


class PostgresBackend:
    """The StorageBackend of a PostgreSQL store (see the module docstring).

    Args:
        conninfo: a libpq connection string or URL.
        schema: the PostgreSQL schema holding the store's tables (created when missing; one run per schema).
        pool_min, pool_max: connections the pool keeps open / opens at most.
        connect_timeout: seconds to wait for a connection (from the pool or the server) before
            :class:`StoreUnavailableError`.
        pipeline: ``"on"``: a transaction's opening goes with its first statement, and its last writes with its
            commit, in pipelines (fewer round trips, a little more CPU per statement); ``"off"``: each in a round
            trip of its own; ``"auto"`` (default): on unless the database is on this host (see
            :func:`~.url.database_is_local`), where a round trip costs less than the pipeline's extra work.
        inline: ``"on"``: ``run`` executes a transaction on the calling thread when it need not wait (see the
            module docstring); ``"off"``: always on a worker thread; ``"auto"`` (default): on for a database on
            this host, whose round trips are short enough to block an event loop for.
    """

    shared_across_processes = False
    """Other processes do write, but their finishes arrive by NOTIFY: the engine need not poll a change token."""

    keeps_request_keys = True
    """Transactions record idempotency keys (see :mod:`agentlightning.store.request_keys`)."""

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        pool_min: int = 1,
        pool_max: int = 8,
        connect_timeout: float = 30.0,
        pipeline: str = "auto",
        inline: str = "auto",
    ) -> None:
        import psycopg_pool

        self.conninfo = conninfo
        self.schema = check_schema_name(schema)
        local = database_is_local(conninfo)
        mode = check_pipeline_mode(pipeline)
        self.pipelines = mode == "on" or (mode == "auto" and not local)
        """Whether transactions send their opening and their last writes in pipelines (see ``pipeline``)."""
        mode = check_pipeline_mode(inline, "inline")
        self.inline = mode == "on" or (mode == "auto" and local)
        """Whether ``run`` executes transactions that need not wait on the calling thread (see ``inline``)."""
        self.channel = f"agl_{self.schema}"
        self.on_finished: Optional[Callable[[Iterable[str]], None]] = None
        self.on_reconnect: Optional[Callable[[], None]] = None
        self.connect_timeout = connect_timeout
        self._closed = False
        self._commits = 0
        self.inline_handoffs = 0
        """Transactions that would have waited inline and went to a worker thread instead."""
        self._pool = psycopg_pool.ConnectionPool(
            conninfo,
            min_size=pool_min,
            max_size=max(pool_max, pool_min),
            kwargs={"options": f"-c search_path={self.schema}", "autocommit": True},
            timeout=connect_timeout,
            open=False,
            name=f"agentlightning-{self.schema}",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
            with self._pool.connection() as conn:
                migrate(conn, self.schema)
        except Exception as exc:
            self._pool.close()
            if isinstance(exc, StoreUnavailableError):
                raise
            raise StoreUnavailableError(f"cannot open the PostgreSQL store ({self._where()}): {exc}") from exc
        self._write_lock = lock_key(self.schema, "write")
        self._begin_write: List[Statement] = [
            ("BEGIN", ()),
            (f"SELECT pg_advisory_xact_lock(hashtext('{self._write_lock}'))", ()),
        ]
        """Opens a write transaction and takes the schema's write lock (the key text is made of the schema name, a
        plain identifier: no quoting needed)."""
        self._begin_write_inline: List[Statement] = [
            ("BEGIN", ()),
            (f"SET LOCAL lock_timeout = {INLINE_LOCK_WAIT_MS}", ()),
            (f"SELECT pg_advisory_xact_lock(hashtext('{self._write_lock}'))", ()),
            ("SET LOCAL lock_timeout TO DEFAULT", ()),
        ]
        """Opens an inline write transaction: takes the write lock if it comes within ``INLINE_LOCK_WAIT_MS``."""
        self._watchdog_lock = lock_key(self.schema, "watchdog")
        self._watch_conn: Any = None
        self.watchdog_leader = False
        """Whether this process held the watchdog lock at its last try (see :meth:`lead_watchdog`)."""
        self.watchdog_tried = False
        """Whether this process has tried to take the watchdog lock yet."""
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._listener = threading.Thread(target=self._listen, name=f"agl-listen-{self.schema}", daemon=True)
        self._listener.start()
        self._listening.wait(connect_timeout)

    def _where(self) -> str:
        try:
            import psycopg.conninfo

            info = psycopg.conninfo.conninfo_to_dict(self.conninfo)
            return f"host={info.get('host', '')} port={info.get('port', '')} dbname={info.get('dbname', '')}"
        except Exception:  # noqa: BLE001 - only a label
            return "?"

    # -- transactions ------------------------------------------------------------------------------------------

    def _transaction(self, fn: Callable[[Any], T], *, write: bool, retry: List[bool], inline: bool) -> T:
        """One attempt at ``fn`` on a pooled connection; ``retry[0]`` tells, after a failure, whether it left nothing
        written (the database never answered: a dead connection) so that the caller may try again. ``inline``:
        raise :class:`_WouldWait` rather than wait for a connection or the write lock.

        The pool's connections are in autocommit mode: the transaction is opened by hand, its ``BEGIN`` (naming a
        read's isolation) and a write's lock sent with its first statement (see ``pipeline``); an inline write
        sends them first, to learn whether the lock came in time."""
        import psycopg_pool

        try:
            with self._pool.connection(timeout=INLINE_CONNECTION_WAIT if inline else None) as conn:
                opening = self._begin_write if write else _BEGIN_READ
                tx = PostgresTransaction(conn, () if inline and write else opening, pipelines=self.pipelines)
                try:
                    if inline and write and not tx.open_waiting_briefly(self._begin_write_inline):
                        raise _WouldWait()
                    result = fn(tx)
                    tx.commit(self._notify(tx.finished) if write else ())
                except BaseException:
                    retry[0] = not tx.answered and not tx.committing
                    _rollback(conn)
                    raise
        except psycopg_pool.PoolTimeout:  # raised only by the wait for a connection
            if inline:
                raise _WouldWait() from None
            raise
        if write:
            self._commits += 1
        return result

    def _notify(self, finished: List[str]) -> List[Statement]:
        """The ``NOTIFY`` statements announcing the ``finished`` rollouts."""
        return [("SELECT pg_notify(%s, %s)", (self.channel, payload)) for payload in _payloads(finished)]

    def run_sync(self, fn: Callable[[Any], T], *, write: bool) -> T:
        """Run ``fn`` against a :class:`PostgresTransaction` in one transaction, from the calling thread.

        A pooled connection the server dropped (a restart, a failover) fails at the transaction's first statement,
        before anything was written: the pool discards it and the transaction is tried again on another, up to
        ``pool_max`` times. A failure after that point raises :class:`StoreUnavailableError` (the outcome of a write
        cut off at its commit is unknown)."""
        return self._run(fn, write=write, inline=False)

    def _run(self, fn: Callable[[Any], T], *, write: bool, inline: bool) -> T:
        import psycopg
        import psycopg_pool

        for attempt in range(self._pool.max_size + 1):
            if self._closed:
                raise StoreClosedError("the PostgreSQL store is closed")
            retry = [False]
            try:
                return self._transaction(fn, write=write, retry=retry, inline=inline)
            except psycopg_pool.PoolTimeout as exc:  # an OperationalError too: no retry, the wait was the timeout
                raise StoreUnavailableError(f"no connection to the PostgreSQL store ({self._where()}): {exc}") from exc
            except psycopg.OperationalError as exc:
                if retry[0] and attempt < self._pool.max_size:
                    continue
                raise StoreUnavailableError(f"PostgreSQL store ({self._where()}) unavailable: {exc}") from exc
            except psycopg.errors.DataError as exc:
                from agentlightning.store.errors import InvalidRequestError

                raise InvalidRequestError(f"PostgreSQL store refused a value: {exc}") from exc
            except psycopg_pool.PoolClosed as exc:
                raise StoreClosedError("the PostgreSQL store is closed") from exc
        raise AssertionError("unreachable")

    async def run(self, fn: Callable[[Any], T], *, write: bool) -> T:
        if self._closed:
            raise StoreClosedError("the PostgreSQL store is closed")
        if self.inline:
            try:
                return self._run(fn, write=write, inline=True)
            except _WouldWait:
                self.inline_handoffs += 1
        return await anyio.to_thread.run_sync(functools.partial(self.run_sync, fn, write=write))

    # -- notifications -----------------------------------------------------------------------------------------

    def _listen(self) -> None:
        """LISTEN on the schema's channel until closed; reconnects (waking every waiter) when the connection drops."""
        import psycopg

        delay = 0.05
        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')
                    self._listening.set()
                    if not first and self.on_reconnect is not None:
                        self.on_reconnect()  # finishes announced while we were away are lost: waiters re-read
                    first, delay = False, 0.05
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=LISTEN_POLL_SECONDS):
                            if self._stop.is_set():
                                return
                            if self.on_finished is not None and note.payload:
                                self.on_finished(note.payload.split("\n"))
            except psycopg.Error as exc:
                if self._stop.is_set():
                    return
                logger.warning("PostgreSQL store: notification listener lost its connection (%s); reconnecting", exc)
                self._listening.set()
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)

    # -- the watchdog's election ----------------------------------------------------------------------------

    def lead_watchdog(self) -> bool:
        """Whether this process runs the schema's timeout scans now: it holds (or has just taken) the schema's
        session-level watchdog advisory lock, on a connection of its own. Of all the processes that open the
        schema, one holds it; when its connection ends (the process died, the database restarted) another takes
        it at its next try. Called by the watchdog thread only."""
        import psycopg

        self.watchdog_tried = True
        conn = self._watch_conn
        try:
            if conn is None or conn.closed:
                conn = self._watch_conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10)
                self.watchdog_leader = False
            if self.watchdog_leader:
                conn.execute("SELECT 1")  # still connected, so still holding the lock
            else:
                row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self._watchdog_lock,)).fetchone()
                self.watchdog_leader = bool(row and row[0])
                if self.watchdog_leader:
                    logger.info("PostgreSQL store: this process now runs the timeout scans of schema %s", self.schema)
        except psycopg.Error as exc:
            logger.warning("PostgreSQL store: watchdog election connection lost (%s)", exc)
            self._drop_watch_conn()
        return self.watchdog_leader

    def _drop_watch_conn(self) -> None:
        conn, self._watch_conn = self._watch_conn, None
        self.watchdog_leader = False
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # noqa: BLE001 - already broken
                logger.debug("PostgreSQL store: closing the watchdog connection failed (%s)", exc)

    # -- the rest of StorageBackend ----------------------------------------------------------------------------

    def change_token(self) -> Any:
        return self._commits

    def statistics(self) -> Dict[str, Any]:
        def read(tx: PostgresTransaction) -> Dict[str, Any]:
            row = tx._one("SELECT pg_database_size(current_database())")
            return {"database_size_bytes": int(row[0]) if row else 0}

        stats = self.run_sync(read, write=False)
        stats["schema"] = self.schema
        stats["schema_version"] = SCHEMA_VERSION
        pool = self._pool.get_stats()
        stats["pool_size"] = pool.get("pool_size", 0)
        stats["inline_transactions"] = self.inline
        stats["inline_handoffs"] = self.inline_handoffs
        stats["pipelines"] = self.pipelines
        return stats

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the listener and close the pool; later calls raise :class:`StoreClosedError`. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._listener.is_alive() and self._listener is not threading.current_thread():
            try:  # an empty notification wakes the listener now rather than at its next poll
                with self._pool.connection(timeout=1.0) as conn:
                    conn.execute("SELECT pg_notify(%s, '')", (self.channel,))
            except Exception as exc:  # noqa: BLE001 - the listener then stops at its next poll
                logger.debug("PostgreSQL store: could not wake the listener (%s)", exc)
            self._listener.join(LISTEN_POLL_SECONDS * 4 + 5)
        self._drop_watch_conn()  # hands the watchdog to another process at once
        self._pool.close()
