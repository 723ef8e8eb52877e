"""A store backend in dicts: the storage half of a LightningStore. EngineLightningStore supplies the rest.

A backend implements two interfaces of :mod:`agentlightning.store`:

- ``StorageTransaction``: plain synchronous reads and writes of whole records (here: the backend object itself);
- ``StorageBackend``: runs a function against a transaction atomically (here: under one lock).

Records are the attrs models of agentlightning; this backend keeps the objects themselves (they are never mutated in
place: the engine writes new versions with ``update_*``/``put_*``). It does not roll back a failed transaction.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, TypeVar

import anyio.lowlevel
from agentlightning.store import EngineLightningStore
from agentlightning.types import Attempt, ResourcesUpdate, Rollout, Span, Worker

T = TypeVar("T")


class DictBackend:
    """A ``StorageBackend`` whose transaction is itself: every method runs under the backend's lock."""

    shared_across_processes = False  # one process only: the engine need not poll change_token()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rollouts: Dict[str, Rollout] = {}  # dicts keep insertion order
        self._attempts: Dict[str, List[Attempt]] = {}  # by rollout, in sequence_id order
        self._queue: List[str] = []
        self._sequences: Dict[str, int] = {}  # rollout id -> last reserved span sequence id
        self._spans: Dict[str, List[Span]] = {}
        self._span_keys: Set[Tuple[str, str, str]] = set()
        self._resources: Dict[str, ResourcesUpdate] = {}
        self._latest_resources: Optional[str] = None
        self._workers: Dict[str, Worker] = {}

    # -- StorageBackend ---------------------------------------------------------------------------------------------

    async def run(self, fn: Callable[[Any], T], *, write: bool) -> T:
        with self._lock:
            result = fn(self)
        await anyio.lowlevel.checkpoint()  # let other tasks run between store calls
        return result

    def run_sync(self, fn: Callable[[Any], T], *, write: bool) -> T:
        with self._lock:
            return fn(self)

    def change_token(self) -> Any:
        return 0

    def statistics(self) -> Dict[str, Any]:
        return {}

    def close(self) -> None:
        pass

    # -- StorageTransaction: rollouts ---------------------------------------------------------------------------------

    def get_rollout(self, rollout_id: str) -> Optional[Rollout]:
        return self._rollouts.get(rollout_id)

    def insert_rollouts(self, rollouts: Sequence[Rollout]) -> None:
        for rollout in rollouts:
            if rollout.rollout_id in self._rollouts:
                raise ValueError(f"rollout {rollout.rollout_id} already exists")
            self._rollouts[rollout.rollout_id] = rollout

    def update_rollout(self, rollout: Rollout) -> None:
        self._rollouts[rollout.rollout_id] = rollout

    def iter_rollouts(
        self, *, status_in: Optional[Sequence[str]] = None, rollout_id_in: Optional[Sequence[str]] = None
    ) -> Iterable[Rollout]:
        return list(self._rollouts.values())  # the hints are optional: the engine filters again

    def count_rollouts(self) -> int:
        return len(self._rollouts)

    # -- attempts -----------------------------------------------------------------------------------------------------

    def insert_attempt(self, attempt: Attempt) -> None:
        self._attempts.setdefault(attempt.rollout_id, []).append(attempt)

    def update_attempt(self, attempt: Attempt) -> None:
        attempts = self._attempts[attempt.rollout_id]
        index = next(i for i, a in enumerate(attempts) if a.attempt_id == attempt.attempt_id)
        attempts[index] = attempt

    def get_attempt(self, rollout_id: str, attempt_id: str) -> Optional[Attempt]:
        return next((a for a in self._attempts.get(rollout_id, []) if a.attempt_id == attempt_id), None)

    def get_attempts(self, rollout_id: str) -> List[Attempt]:
        return list(self._attempts.get(rollout_id, []))

    def get_latest_attempts(self, rollout_ids: Sequence[str]) -> Dict[str, Attempt]:
        return {rid: self._attempts[rid][-1] for rid in rollout_ids if self._attempts.get(rid)}

    def count_attempts(self) -> int:
        return sum(len(attempts) for attempts in self._attempts.values())

    # -- the queue ----------------------------------------------------------------------------------------------------

    def queue_push(self, rollout_ids: Sequence[str]) -> None:
        for rollout_id in rollout_ids:
            if rollout_id not in self._queue:
                self._queue.append(rollout_id)

    def queue_pop(self, limit: int) -> List[str]:
        popped, self._queue = self._queue[:limit], self._queue[limit:]
        return popped

    def queue_contains(self, rollout_id: str) -> bool:
        return rollout_id in self._queue

    # -- span sequence ids --------------------------------------------------------------------------------------------

    def sequence_next(self, rollout_id: str, count: int = 1) -> int:
        first = self._sequences.get(rollout_id, 0) + 1
        self._sequences[rollout_id] = first + count - 1
        return first

    def sequence_raise(self, rollout_id: str, value: int) -> None:
        self._sequences[rollout_id] = max(self._sequences.get(rollout_id, 0), value)

    # -- spans --------------------------------------------------------------------------------------------------------

    def insert_spans(self, spans: Sequence[Span]) -> List[bool]:
        stored = []
        for span in spans:
            key = (span.rollout_id, span.attempt_id, span.span_id)
            stored.append(key not in self._span_keys)
            if stored[-1]:
                self._span_keys.add(key)
                self._spans.setdefault(span.rollout_id, []).append(span)
        return stored

    def get_spans(self, rollout_id: str, attempt_id: Optional[str] = None) -> List[Span]:
        spans = [s for s in self._spans.get(rollout_id, []) if attempt_id is None or s.attempt_id == attempt_id]
        return sorted(spans, key=lambda s: s.sequence_id)

    def count_spans(self) -> int:
        return len(self._span_keys)

    # -- resources and workers ----------------------------------------------------------------------------------------

    def get_resources(self, resources_id: str) -> Optional[ResourcesUpdate]:
        return self._resources.get(resources_id)

    def put_resources(self, update: ResourcesUpdate) -> None:
        self._resources[update.resources_id] = update
        self._latest_resources = update.resources_id

    def get_latest_resources(self) -> Optional[ResourcesUpdate]:
        return self._resources.get(self._latest_resources) if self._latest_resources else None

    def iter_resources(self) -> Iterable[ResourcesUpdate]:
        return list(self._resources.values())

    def count_resources(self) -> int:
        return len(self._resources)

    def get_worker(self, worker_id: str) -> Optional[Worker]:
        return self._workers.get(worker_id)

    def put_worker(self, worker: Worker) -> None:
        self._workers[worker.worker_id] = worker

    def iter_workers(self) -> Iterable[Worker]:
        return list(self._workers.values())

    def count_workers(self) -> int:
        return len(self._workers)


class DictLightningStore(EngineLightningStore):
    """The whole LightningStore over a :class:`DictBackend`. ``options`` (``scan_debounce_seconds``,
    ``watchdog_interval``, ``clock``) go to :class:`~agentlightning.store.EngineLightningStore`."""

    def __init__(self, url: Optional[str] = None, **options: Any) -> None:  # url: set when opened as mydict://
        super().__init__(DictBackend(), **options)
