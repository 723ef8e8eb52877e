"""What a store backend implements: storage and atomicity, nothing else.

The status logic, query semantics (filters, sort, pagination), retries, the watchdog and ``wait_for_rollouts`` are
written once, in :mod:`agentlightning.store.engine`, over these two interfaces:

- :class:`StorageTransaction`: plain synchronous reads and writes of whole records, valid inside one atomic unit.
- :class:`StorageBackend`: runs a function against a transaction atomically (a lock for memory, ``BEGIN
  IMMEDIATE`` on a worker thread for SQLite), and says when other processes may have changed the data.

Records are the attrs models of :mod:`agentlightning.types`; a backend may store them however it likes (objects,
JSON columns) but must hand back equal objects. Iteration order is insertion order unless a method says otherwise.

A transaction may also implement :class:`QueryTransaction` (``select`` and ``count``) to answer queries itself (in
SQL, from an index) instead of having the engine decode and filter every candidate record. It is optional: the engine
looks for the methods, and answers in Python whenever they are missing or return ``None``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, Sequence, Tuple, TypeVar

from agentlightning.types.core import Attempt, Rollout, Worker
from agentlightning.types.resources import ResourcesUpdate
from agentlightning.types.tracer import Span

from .query import Sort, Where

__all__ = ["StorageTransaction", "QueryTransaction", "HeartbeatTransaction", "StorageBackend", "WithoutQueryPushdown"]

T = TypeVar("T")


class StorageTransaction(Protocol):
    """Reads and writes inside one atomic unit. Methods are synchronous and never block on other transactions."""

    # rollouts
    def get_rollout(self, rollout_id: str) -> Optional[Rollout]: ...
    def insert_rollouts(self, rollouts: Sequence[Rollout]) -> None:
        """Insert new rollouts; an existing id is a bug of the caller (raise ValueError)."""

    def update_rollout(self, rollout: Rollout) -> None:
        """Replace a stored rollout (same id)."""

    def iter_rollouts(
        self, *, status_in: Optional[Sequence[str]] = None, rollout_id_in: Optional[Sequence[str]] = None
    ) -> Iterable[Rollout]:
        """Rollouts in insertion order, restricted by the given (ANDed) hints when the backend can use an index.

        The engine re-applies every filter, so a backend may ignore the hints and return everything.
        """

    def count_rollouts(self) -> int: ...

    # attempts
    def insert_attempt(self, attempt: Attempt) -> None: ...
    def update_attempt(self, attempt: Attempt) -> None: ...
    def get_attempt(self, rollout_id: str, attempt_id: str) -> Optional[Attempt]: ...
    def get_attempts(self, rollout_id: str) -> List[Attempt]:
        """All attempts of a rollout, by ``sequence_id`` ascending."""

    def get_latest_attempts(self, rollout_ids: Sequence[str]) -> Dict[str, Attempt]:
        """The highest-``sequence_id`` attempt of each rollout that has one."""

    def count_attempts(self) -> int: ...

    # queue (FIFO of rollout ids; an id is in it at most once)
    def queue_push(self, rollout_ids: Sequence[str]) -> None:
        """Append ids at the tail, skipping those already queued."""

    def queue_pop(self, limit: int) -> List[str]:
        """Remove and return up to ``limit`` ids from the head."""

    def queue_contains(self, rollout_id: str) -> bool: ...

    # span sequence counters, one per rollout
    def sequence_next(self, rollout_id: str, count: int = 1) -> int:
        """Reserve ``count`` consecutive ids; returns the first. A new counter starts at 1."""

    def sequence_raise(self, rollout_id: str, value: int) -> None:
        """Make sure the next reserved id is above ``value`` (take the max)."""

    # spans
    def insert_spans(self, spans: Sequence[Span]) -> List[bool]:
        """Insert spans; for each, whether it was stored (False: same (rollout, attempt, span id) already stored)."""

    def get_spans(self, rollout_id: str, attempt_id: Optional[str] = None) -> List[Span]:
        """A rollout's spans (of one attempt when given), by ``sequence_id`` ascending."""

    def count_spans(self) -> int: ...

    # resources
    def get_resources(self, resources_id: str) -> Optional[ResourcesUpdate]: ...
    def put_resources(self, update: ResourcesUpdate) -> None:
        """Insert or replace; the written one becomes the latest."""

    def get_latest_resources(self) -> Optional[ResourcesUpdate]: ...
    def iter_resources(self) -> Iterable[ResourcesUpdate]: ...
    def count_resources(self) -> int: ...

    # workers
    def get_worker(self, worker_id: str) -> Optional[Worker]: ...
    def put_worker(self, worker: Worker) -> None:
        """Insert or replace."""

    def iter_workers(self) -> Iterable[Worker]: ...
    def count_workers(self) -> int: ...


class QueryTransaction(Protocol):
    """Optional query push-down of a transaction. ``kind`` is "rollouts", "attempts", "spans", "resources" or
    "workers"; ``where`` holds the parsed filters (:class:`~agentlightning.store.query.Where`, whose ``test`` is the
    reference semantics). A method returns ``None`` for a query it cannot answer *exactly* as the engine would; the
    engine then answers it in Python.

    The order is fixed: the kind's base order (:data:`~agentlightning.store.query.BASE_ORDER`: insertion order for
    rollouts, ``(sequence_id, insertion)`` for spans, ...), stably sorted by ``sort`` when given (``None`` before
    every value; items with equal keys keep their base order in both directions). Spans are only ever asked for with
    an ``exact`` ``rollout_id`` condition in ``where.must``, and must raise
    :class:`~agentlightning.store.errors.SpansEvictedError` where ``get_spans`` would.
    """

    def select(
        self, kind: str, where: Where, sort: Optional[Sort], limit: int, offset: int
    ) -> Optional[Tuple[List[Any], int]]:
        """The page ``[offset, offset + limit)`` (``limit=-1``: to the end) of the matching records, in the fixed
        order, and how many records match in all; or ``None``."""
        ...

    def count(self, kind: str, where: Where) -> Optional[int]:
        """How many records match (a page with ``limit=0``); or ``None``."""
        ...


class HeartbeatTransaction(Protocol):
    """Optional cheaper heartbeat of a transaction: the engine calls it instead of ``update_attempt`` when a span's
    heartbeat changes nothing but the attempt's ``last_heartbeat_time``."""

    def record_heartbeat(self, attempt: Attempt) -> None:
        """Store ``attempt``, equal to the stored one but for ``last_heartbeat_time``; later reads (any connection,
        any process) must return it as ``update_attempt`` would have stored it."""
        ...


class StorageBackend(Protocol):
    """Runs functions atomically against the storage."""

    shared_across_processes: bool
    """True when other processes may open the same data (SQLite): the engine then also polls for their changes."""

    async def run(self, fn: Callable[[StorageTransaction], T], *, write: bool) -> T:
        """Run ``fn`` in one transaction and return its result. ``write=False`` promises ``fn`` writes nothing.

        Must be callable from any event loop (asyncio or trio) and any thread. An exception raised by ``fn`` rolls
        back its writes where the backend supports it, and propagates unchanged.
        """
        ...

    def run_sync(self, fn: Callable[[StorageTransaction], T], *, write: bool) -> T:
        """The same, from a plain thread (the watchdog's)."""
        ...

    def change_token(self) -> Any:
        """A cheap value that changes whenever any process commits a write (SQLite: ``PRAGMA data_version`` plus a
        local counter). Used to wake ``wait_for_rollouts`` for changes made elsewhere; memory stores may return a
        constant."""
        ...

    def statistics(self) -> Dict[str, Any]:
        """Backend-specific figures merged into ``statistics()`` (file size, evictions, ...)."""
        ...

    def close(self) -> None: ...


class _HiddenQueries:
    """A transaction seen without ``select``/``count``."""

    def __init__(self, tx: Any) -> None:
        self._tx = tx

    def __getattr__(self, name: str) -> Any:
        if name in ("select", "count"):
            raise AttributeError(name)
        return getattr(self._tx, name)


class WithoutQueryPushdown:
    """A backend seen as one without query push-down: the engine over it answers every query in Python, as for a
    backend that implements no :class:`QueryTransaction`. For comparisons (tests, benchmarks) over the same data;
    closing it leaves the wrapped backend open."""

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        self.shared_across_processes = inner.shared_across_processes

    async def run(self, fn: Callable[[StorageTransaction], T], *, write: bool) -> T:
        return await self.inner.run(lambda tx: fn(_HiddenQueries(tx)), write=write)

    def run_sync(self, fn: Callable[[StorageTransaction], T], *, write: bool) -> T:
        return self.inner.run_sync(lambda tx: fn(_HiddenQueries(tx)), write=write)

    def change_token(self) -> Any:
        return self.inner.change_token()

    def statistics(self) -> Dict[str, Any]:
        return self.inner.statistics()

    def close(self) -> None:
        pass
