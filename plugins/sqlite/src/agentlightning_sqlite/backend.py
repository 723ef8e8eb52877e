"""SqliteBackend: atomic transactions on one SQLite file, shared by threads and processes.

- One connection per thread (sqlite3 connections never cross threads); connections of finished threads are closed.
- Write transactions are ``BEGIN IMMEDIATE``: the write lock is taken up front, so a dequeue is atomic across
  processes. Inside a process writers queue on a lock first, so SQLite's sleeping busy handler only arbitrates
  between processes.
- "database is locked" never escapes: SQLite waits ``busy_timeout`` seconds, then the backend retries with backoff
  until ``lock_timeout`` has passed and only then raises :class:`StoreUnavailableError`.
- WAL journal; a transaction is committed before ``run`` returns (``synchronous=NORMAL`` survives a process crash,
  ``FULL`` also a power cut). A background :class:`~.checkpoint.Checkpointer` folds the log into the file.
- ``run`` executes a transaction right on the event-loop thread when that cannot wait (reads, and with
  ``synchronous=NORMAL`` writes that get both locks at once): a thread hop costs more than most transactions.
  Everything else runs on a worker thread.
- Group commit (:mod:`.batching`): writes that one event loop issues together run in one transaction (a failing
  write is rolled back alone: the batch runs again with a SAVEPOINT per write), and all their callers return after
  that one commit. Inline writes on asyncio join the batch of their loop turn, committed when the turn ends (no
  waiting for more writes), unless the recent batches held about one write (a lone writer commits at once); writes
  that cannot run inline (another thread or process holds the write lock, or commits fsync) wait a few turns for
  others to join. On trio inline writes commit one by one.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import sqlite3
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, NoReturn, Optional, Set, Tuple, TypeVar

import anyio.to_thread
from agentlightning.store.errors import StoreClosedError, StoreCorruptError, StoreUnavailableError

from .batching import MAX_BATCH, Batch, TurnBatch, Write
from .checkpoint import Checkpointer, checkpoint
from .retention import Retention
from .schema import check_file, migrate, read_version, track_span_totals
from .transaction import RecordCache, SqliteTransaction

__all__ = ["SqliteBackend", "SYNCHRONOUS_MODES"]

T = TypeVar("T")

SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")

_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
PAGE_SIZE = 8192
"""Page size of new files: a ~2.5 KB span record then wastes less of a page than with SQLite's 4096."""
AUTOCHECKPOINT_PAGES = 2048
"""SQLite's own checkpoint inside a commit, only should the Checkpointer thread fall behind (16 MiB of log)."""
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024
"""Largest log file kept when the log restarts; beyond it the Checkpointer truncates the log (see checkpoint.py).
The disk headroom a store needs beyond its database file is about twice this (the log, and the database pages a
checkpoint adds)."""
CHECKPOINT_POKE_COMMITS = 256
"""Commits between two checkpoints asked of the Checkpointer thread (besides its once-a-second pass). Each checkpoint
copies every page changed since the last one, so hot pages (counters, index and table tails) are copied once per
checkpoint: with 256 small commits (a few MiB of log) the thread used ~40% less CPU on the store benchmark than 64."""

BATCH_SIZE_TO_BATCH = 1.5
"""Inline writes on asyncio are batched per event-loop turn while the recent batches (a moving average) held at least
this many writes; below it they commit one by one, a write alone pays for no batch."""

BATCH_SIZE_AT_START = 4.0
"""The average a thread starts from: its first writes are batched."""

LONE_WRITES_BETWEEN_BATCHES = 64
"""Writes committed one by one, below that average, before one is batched again to measure it anew."""

_CORRUPT = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_UNAVAILABLE = {8, 10, 13, 14}  # SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN


def _code(exc: sqlite3.Error) -> Optional[int]:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _is_busy(exc: sqlite3.Error) -> bool:
    code = _code(exc)
    if code is not None:
        return code in _BUSY
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def _store_error(exc: sqlite3.Error, path: str) -> Exception:
    """The store error for an SQLite failure that retrying cannot fix (``exc`` itself for the others)."""
    code = _code(exc)
    message = str(exc)
    error: Exception
    if code in _CORRUPT or "malformed" in message or "not a database" in message:
        error = StoreCorruptError(f"SQLite store {path!r} is damaged: {message}")
    elif code in _UNAVAILABLE or "readonly" in message or "disk" in message:
        error = StoreUnavailableError(f"SQLite store {path!r} cannot be written: {message}")
    else:
        return exc
    error.__cause__ = exc
    return error


def _reraise(exc: sqlite3.Error, path: str) -> NoReturn:
    """Raise the store error for an SQLite failure that retrying cannot fix (others unchanged)."""
    error = _store_error(exc, path)
    if error is exc:
        raise exc
    raise error from exc


class StoreConnection(sqlite3.Connection):
    """A connection with the :class:`RecordCache` of its write transactions."""

    records: RecordCache


def connect(path: str, synchronous: str, busy_timeout: float) -> StoreConnection:
    """A connection set up the store's way (autocommit mode: transactions are explicit)."""
    try:
        conn = sqlite3.connect(
            path,
            factory=StoreConnection,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,  # used by its own thread only; closed by close() from another
            cached_statements=128,
        )
    except sqlite3.Error as exc:
        raise StoreUnavailableError(f"cannot open SQLite store {path!r}: {exc}") from exc
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")  # the Checkpointer thread comes first
    conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
    conn.records = RecordCache()
    return conn


def _close_abandoned(conns: List[Tuple[Any, StoreConnection]], pid: int) -> None:
    """Close the connections of a backend that was garbage-collected without close(). Never in a forked child: closing
    a connection inherited through fork() would drop the parent's file locks."""
    if os.getpid() == pid:
        for _, conn in conns:
            conn.close()
    conns.clear()


class SqliteBackend:
    """The StorageBackend of an SQLite store file (see the module docstring)."""

    shared_across_processes = True

    keeps_request_keys = True
    """Transactions record idempotency keys (see :mod:`agentlightning.store.request_keys`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        lock_timeout: float = 120.0,
        retention: Optional[Retention] = None,
        inline_transactions: bool = True,
        group_commit: bool = True,
    ) -> None:
        mode = str(synchronous).upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, got {synchronous!r}")
        if busy_timeout < 0 or lock_timeout < 0:
            raise ValueError("busy_timeout and lock_timeout must be >= 0 seconds")
        self.path = os.fspath(path)
        self.synchronous = mode
        self.busy_timeout = float(busy_timeout)
        self.lock_timeout = float(lock_timeout)
        self.retention = retention or Retention()
        self.inline_transactions = inline_transactions
        self.group_commit = group_commit
        self._closed = False
        self._initialized = False
        self._commits = 0
        self._after_fork()
        check_file(self.path)
        try:
            self._initialize()
        except BaseException:
            self._checkpointer.stop()
            self._close_connections()
            raise

    # -- connections -------------------------------------------------------------------------------------------

    def _after_fork(self) -> None:
        """Fresh per-process state; connections inherited through fork() are abandoned, never used."""
        self._pid = os.getpid()
        self._local = threading.local()
        self._conns: List[Tuple[weakref.ref[threading.Thread], StoreConnection]] = []
        self._conns_lock = threading.Lock()
        # a store dropped without close() still closes its connections (in this process only: see _close_abandoned)
        weakref.finalize(self, _close_abandoned, self._conns, self._pid)
        self._write_lock = threading.Lock()
        self._handoffs: Set[Any] = set()  # tasks committing a turn's batch on a worker thread (strong references)
        # the checkpoint thread holds no reference to the backend, and stops once the backend is garbage
        self._checkpointer = Checkpointer(
            self.path,
            functools.partial(connect, self.path, self.synchronous, 0.0),
            truncate_bytes=JOURNAL_SIZE_LIMIT,
        )
        weakref.finalize(self, self._checkpointer.signal_stop)
        if self._initialized:
            self._checkpointer.start()

    def _open_connection(self, busy_timeout: Optional[float] = None) -> StoreConnection:
        return connect(self.path, self.synchronous, self.busy_timeout if busy_timeout is None else busy_timeout)

    def _connection(self, *, inline: bool = False) -> StoreConnection:
        """This thread's connection; ``inline`` ones never wait for a lock (used on event-loop threads)."""
        if self._closed:
            raise StoreClosedError(f"the SQLite store {self.path!r} is closed")
        if self._pid != os.getpid():
            self._after_fork()
        attr = "inline_conn" if inline else "conn"
        conn: Optional[StoreConnection] = getattr(self._local, attr, None)
        if conn is None:
            conn = self._open_connection(0.0 if inline else None)
            with self._conns_lock:
                self._reap_dead_threads()
                self._conns.append((weakref.ref(threading.current_thread()), conn))
            setattr(self._local, attr, conn)
        return conn

    def _reap_dead_threads(self) -> None:
        alive = []
        for ref, conn in self._conns:
            thread = ref()
            if thread is None or not thread.is_alive():
                conn.close()
            else:
                alive.append((ref, conn))
        self._conns[:] = alive

    def _close_connections(self) -> None:
        with self._conns_lock:
            for _, conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = threading.local()

    def _initialize(self) -> None:
        def setup() -> None:
            conn = self._connection()
            version = read_version(conn, self.path)  # refuses foreign and newer files before anything is written
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                if version == 0:
                    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # only takes on a new, empty file
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreUnavailableError(f"SQLite store {self.path!r}: cannot use a WAL journal here ({mode})")
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                self._write(conn, functools.partial(self._setup_schema, conn), bookkeeping=False)

        self._retrying(setup)
        self._initialized = True
        self._checkpointer.start()

    def _setup_schema(self, conn: sqlite3.Connection, tx: SqliteTransaction) -> None:
        migrate(conn, self.path)
        if self.retention.enabled:  # retention reads the store-wide span totals on every write: keep them tracked
            track_span_totals(conn)

    # -- transactions ------------------------------------------------------------------------------------------

    def _write(self, conn: StoreConnection, fn: Callable[[Any], T], *, bookkeeping: bool = True) -> T:
        """Run ``fn`` in the write transaction just begun on ``conn`` (the caller holds the write lock) and commit."""
        try:
            records = conn.records
            records.validate(conn)
            tx = SqliteTransaction(conn, records)
            result = fn(tx)
            tx.flush()
            if bookkeeping and self.retention.enabled and (tx.spans_added or tx.finished_rollouts):
                self.retention.compact(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        records.absorb(tx)
        self._committed()
        return result

    def _committed(self) -> None:
        self._commits += 1
        if not self._commits % CHECKPOINT_POKE_COMMITS:
            self._checkpointer.poke()

    def _execute_batch(self, conn: StoreConnection, writes: List[Write[Any]]) -> None:
        """Run the writes of a group commit in the write transaction just begun on ``conn`` (the caller holds the
        write lock) and commit those that succeeded.

        A write that raises is rolled back alone and keeps its error; the others are unaffected. The writes first run
        one after the other in the transaction, with no savepoint (a savepoint held open over several writes makes
        SQLite copy every page they change to a statement journal, which spills to a temporary file past 64 KiB);
        should one raise, the transaction is rolled back, and a batch of several is begun again with each write in
        its own SAVEPOINT, so that the failing write is undone alone (the writes' functions then run twice). What no
        savepoint can contain (SQLite aborted the whole transaction, the database is busy, a non-``Exception``)
        rolls everything back and propagates: busy is retried by the caller, the rest fails the whole batch.
        """
        records = conn.records
        try:
            records.validate(conn)
            grew = self._run_writes(conn, records, writes, isolated=False)
            if grew is None:
                records.clear()
                conn.execute("ROLLBACK")
                if len(writes) == 1:
                    return  # its error is its outcome; nothing to commit
                conn.execute("BEGIN IMMEDIATE")  # busy (another process took the lock meanwhile): retried as a whole
                records.validate(conn)
                grew = self._run_writes(conn, records, writes, isolated=True)
            stored = any(write.error is None for write in writes)
            if grew and self.retention.enabled:
                self.retention.compact(conn)
            conn.execute("COMMIT" if stored else "ROLLBACK")
        except BaseException:
            records.clear()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if stored:
            self._committed()

    def _run_writes(
        self, conn: StoreConnection, records: RecordCache, writes: List[Write[Any]], *, isolated: bool
    ) -> Optional[bool]:
        """Run ``writes`` in the open transaction, each in its own SAVEPOINT when ``isolated``: whether the writes
        that succeeded added spans or finished rollouts (retention may have work), or None as soon as one raises an
        ``Exception`` when not ``isolated`` (``isolated``: that write is rolled back to its savepoint, keeps its
        error, and the others run). What no savepoint can contain propagates (see :meth:`_execute_batch`)."""
        grew = False
        for write in writes:
            write.result, write.error = None, None
            if isolated:
                conn.execute("SAVEPOINT write")
            tx = SqliteTransaction(conn, records)
            try:
                write.result = write.fn(tx)
                tx.flush()
            except Exception as exc:
                if not conn.in_transaction or (isinstance(exc, sqlite3.Error) and _is_busy(exc)):
                    raise
                write.error = _store_error(exc, self.path) if isinstance(exc, sqlite3.Error) else exc
                if not isolated:
                    return None
                conn.execute("ROLLBACK TO write")
            else:
                grew = grew or bool(tx.spans_added or tx.finished_rollouts)
                records.absorb(tx)  # the next writes of the batch read through it; cleared if all rolls back
            if isolated:
                conn.execute("RELEASE write")
        return grew

    def _read(self, conn: sqlite3.Connection, fn: Callable[[Any], T]) -> T:
        conn.execute("BEGIN")
        try:
            return fn(SqliteTransaction(conn))
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _transaction(self, conn: StoreConnection, fn: Callable[[Any], T], *, write: bool) -> T:
        if not write:
            return self._read(conn, fn)
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            return self._write(conn, fn)

    def _retrying(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying with backoff while the database is locked, up to ``lock_timeout`` seconds."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.002
        while True:
            try:
                return fn()
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    _reraise(exc, self.path)
                if time.monotonic() >= deadline:
                    raise StoreUnavailableError(
                        f"SQLite store {self.path!r} stayed locked by another process for more than "
                        f"{self.lock_timeout:g}s"
                    ) from exc
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.25)

    def run_sync(self, fn: Callable[[Any], T], *, write: bool) -> T:
        """Run ``fn`` against a :class:`SqliteTransaction` in one transaction, from the calling thread."""
        conn = self._connection()
        return self._retrying(lambda: self._transaction(conn, fn, write=write))

    def _run_inline(self, fn: Callable[[Any], T], *, write: bool) -> Tuple[bool, Optional[T]]:
        """Run ``fn`` on the calling (event-loop) thread if that needs no waiting: (True, result), else (False, None).

        Reads never wait under WAL. A write goes inline only when no other thread of this process writes, no other
        process holds the database's write lock, and its commit does not fsync (``synchronous=NORMAL``; the WAL is
        checkpointed by a background thread). Anything else goes to a worker thread, which may wait.
        """
        conn = self._connection(inline=True)
        try:
            if not write:
                return True, self._read(conn, fn)
            if not self._write_lock.acquire(blocking=False):
                return False, None
            try:
                conn.execute("BEGIN IMMEDIATE")
                return True, self._write(conn, fn)
            finally:
                self._write_lock.release()
        except sqlite3.Error as exc:
            if _is_busy(exc):
                return False, None
            _reraise(exc, self.path)

    def _commit_inline(self, writes: List[Write[Any]]) -> bool:
        """Run a batch on the event-loop thread if that needs no waiting (see :meth:`_run_inline`); False if not."""
        conn = self._connection(inline=True)
        if not self._write_lock.acquire(blocking=False):
            return False
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._execute_batch(conn, writes)
            return True
        except sqlite3.Error as exc:
            if _is_busy(exc):
                return False
            _reraise(exc, self.path)
        finally:
            self._write_lock.release()

    def _commit_blocking(self, writes: List[Write[Any]]) -> None:
        """Run a batch from a worker thread, waiting for the locks (retrying while another process holds it)."""
        conn = self._connection()

        def attempt() -> None:
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                self._execute_batch(conn, writes)

        self._retrying(attempt)

    async def _run_grouped(self, fn: Callable[[Any], T]) -> T:
        """Run the write ``fn`` in this thread's open batch, or lead a new one (see :mod:`.batching`)."""
        write: Write[T] = Write(fn)
        open_batch: Optional[Batch] = getattr(self._local, "batch", None)
        # shielded: a write whose caller is cancelled may still be committed by its batch, so the caller waits for
        # the outcome as it would for a worker thread (a batch never waits long)
        if open_batch is not None and open_batch.join(write):
            with anyio.CancelScope(shield=True):
                await open_batch.done.wait()
            return write.outcome()
        batch = self._local.batch = Batch(write)
        with anyio.CancelScope(shield=True):
            try:
                await batch.gather()
            finally:
                if getattr(self._local, "batch", None) is batch:
                    self._local.batch = None
            try:
                inline = self.inline_transactions and self.synchronous == "NORMAL"
                if not (inline and self._commit_inline(batch.writes)):
                    await anyio.to_thread.run_sync(self._commit_blocking, batch.writes)
            except BaseException as exc:  # noqa: BLE001 - every writer of the batch gets the failure
                batch.fail(exc)
            finally:
                batch.done.set()
        return write.outcome()

    def _joins_turn(self) -> bool:
        """Whether an inline write on asyncio joins the batch of its loop turn: while the recent batches held about one
        write (one task writing), writes commit at once, and only every few writes one is batched, to see whether other
        tasks write alongside again (see ``BATCH_SIZE_TO_BATCH``)."""
        local = self._local
        if getattr(local, "turn", None) is not None:
            return True
        if getattr(local, "batch_size", BATCH_SIZE_AT_START) >= BATCH_SIZE_TO_BATCH:
            return True
        local.solo -= 1
        return bool(local.solo < 0)

    async def _run_in_turn(self, fn: Callable[[Any], T], loop: asyncio.AbstractEventLoop) -> T:
        """Run the inline write ``fn`` in the batch of this loop turn (see :class:`.batching.TurnBatch`).

        The caller returns after the batch's commit. A caller cancelled before it gets the cancellation at once; its
        write is still committed with the batch, at the end of the turn.
        """
        batch: Optional[TurnBatch] = getattr(self._local, "turn", None)
        if batch is None or len(batch.writes) >= MAX_BATCH:
            batch = self._local.turn = TurnBatch()
            loop.call_soon(self._commit_turn, batch)
        future: asyncio.Future[T] = loop.create_future()
        batch.add(Write(fn), future)
        return await future

    def _commit_turn(self, batch: TurnBatch) -> None:
        """Commit a turn's batch on the event-loop thread, or hand it to a worker thread if that would wait."""
        local = self._local
        if getattr(local, "turn", None) is batch:
            local.turn = None
        local.batch_size = 0.75 * getattr(local, "batch_size", BATCH_SIZE_AT_START) + 0.25 * len(batch.writes)
        local.solo = LONE_WRITES_BETWEEN_BATCHES
        try:
            if self._closed:
                raise StoreClosedError(f"the SQLite store {self.path!r} is closed")
            if not self._commit_inline(batch.writes):
                task = asyncio.get_running_loop().create_task(self._commit_turn_blocking(batch))
                self._handoffs.add(task)
                task.add_done_callback(self._handoffs.discard)
                return
        except BaseException as exc:  # noqa: BLE001 - every writer of the batch gets the failure
            batch.fail(exc)
        batch.settle()

    async def _commit_turn_blocking(self, batch: TurnBatch) -> None:
        try:
            await anyio.to_thread.run_sync(self._commit_blocking, batch.writes)
        except BaseException as exc:  # noqa: BLE001 - every writer of the batch gets the failure
            batch.fail(exc)
        finally:
            batch.settle()

    async def run(self, fn: Callable[[Any], T], *, write: bool) -> T:
        if self._closed:
            raise StoreClosedError(f"the SQLite store {self.path!r} is closed")
        if self.inline_transactions and (not write or self.synchronous == "NORMAL"):
            if write and self.group_commit:
                loop = asyncio.events._get_running_loop()  # None on trio
                if loop is not None and self._joins_turn():
                    return await self._run_in_turn(fn, loop)
            done, result = self._run_inline(fn, write=write)
            if done:
                return result  # type: ignore[return-value]
        if write and self.group_commit:
            return await self._run_grouped(fn)
        return await anyio.to_thread.run_sync(functools.partial(self.run_sync, fn, write=write))

    # -- the rest of StorageBackend ----------------------------------------------------------------------------

    def change_token(self) -> Any:
        """(``PRAGMA data_version`` of this thread's connection, commits made by this backend)."""
        conn = self._connection()
        version = self._retrying(lambda: conn.execute("PRAGMA data_version").fetchone()[0])
        return (version, self._commits)

    def compact(self) -> Tuple[int, int]:
        """Apply the retention limits now; returns (rollouts, spans) evicted."""
        if not self.retention.enabled:
            return (0, 0)
        conn = self._connection()

        def compact() -> Tuple[int, int]:
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                return self._write(conn, lambda tx: self.retention.compact(conn), bookkeeping=False)

        return self._retrying(compact)

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file now, and truncate the log if it grew past
        :data:`JOURNAL_SIZE_LIMIT` (waits briefly for readers; the background thread does this on its own)."""
        conn = self._open_connection(0.0)
        try:
            self._retrying(lambda: checkpoint(conn, self.path + "-wal", JOURNAL_SIZE_LIMIT))
        finally:
            conn.close()

    def file_size_bytes(self) -> int:
        """The database file plus its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total

    def statistics(self) -> Dict[str, Any]:
        counters = self.run_sync(lambda tx: tx.counters(), write=False)
        stats: Dict[str, Any] = {
            "file_size_bytes": self.file_size_bytes(),
            "total_span_bytes": counters["span_bytes"],
            "evicted_rollouts": counters["evicted_rollouts"],
            "evicted_spans": counters["evicted_spans"],
        }
        return stats

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close every connection; later calls raise :class:`StoreClosedError`. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._pid != os.getpid():
            return
        self._checkpointer.stop()
        with self._write_lock:
            self._close_connections()
