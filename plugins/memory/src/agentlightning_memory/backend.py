"""Storage for the in-memory store: plain dicts under one ``threading.Lock``, run inline (no threads); rollouts,
attempts and resources are kept as the objects given, spans packed (see below).

Spans are accounted by an estimate of their size; beyond ``memory_budget_bytes`` the spans of finished rollouts are
evicted, oldest rollout first. A rollout whose spans were evicted answers ``query_spans`` with
:class:`~agentlightning.store.errors.SpansEvictedError` from then on (spans that arrive later are kept and counted,
but the set stays incomplete, so it is never served as if it were whole).

Spans are kept packed (:mod:`.packing`): plain tuples the garbage collector does not track; queries rebuild fresh
span objects.

Queries are answered here where an index helps (the engine's Python path does the rest): each status keeps the
sorted insertion positions of its rollouts, so a status count is a sum of lengths and a page in insertion order
touches only its own rollouts; a page of a rollout's spans unpacks only the page.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import math
import threading
import types
from collections import deque
from typing import (
    Any,
    Awaitable,
    Callable,
    Deque,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
    TypeVar,
)

import anyio.lowlevel
from agentlightning.store.errors import SpansEvictedError
from agentlightning.store.query import AT_LEAST, Condition, Sort, Where, sort_items
from agentlightning.store.transitions import heartbeat_moves_time_only, with_heartbeat
from agentlightning.types.core import FINISHED_STATUSES, Attempt, Rollout, Worker
from agentlightning.types.resources import ResourcesUpdate
from agentlightning.types.tracer import Span

from .packing import PackedSpan, pack_span, packed_sequence_id, unpack_span

__all__ = ["MemoryBackend", "estimate_span_size", "scheduling_point"]

T = TypeVar("T")

_SPAN_OVERHEAD = 1200
"""Bytes of a span's fixed part (ids, context objects, status, resource) in CPython, roughly."""


def _size(value: Any) -> int:
    kind = type(value)
    if kind is str:
        return 49 + len(value)
    if kind is dict:
        total = 64
        for key, item in value.items():
            total += 49 + len(key) if type(key) is str else _size(key)
            total += 49 + len(item) if type(item) is str else _size(item)
        return total
    if kind is list or kind is tuple:
        return 56 + sum(8 + _size(v) for v in value)
    if kind in (int, float, bool) or value is None:
        return 28
    if isinstance(value, str):
        return 49 + len(value)
    if isinstance(value, dict):
        return _size(dict(value))
    if isinstance(value, (list, tuple)):
        return _size(list(value))
    return 64


def estimate_span_size(span: Span) -> int:
    """A cheap estimate of the bytes a stored span holds (its attributes, events and links dominate)."""
    size = _SPAN_OVERHEAD + _size(span.attributes) + _size(span.name)
    for event in span.events:
        size += 120 + _size(event.attributes)
    for link in span.links:
        size += 200 + _size(link.attributes or {})
    if span.resource.attributes:
        size += _size(span.resource.attributes)
    return size


def _span_key(attempt_id: Any, span_id: Any) -> Any:
    """A span's key in its rollout's bucket: one string for the usual string ids (a string is nothing the garbage
    collector tracks, a ``(attempt_id, span_id)`` tuple is until a collection sees it), the tuple otherwise. The
    string is unambiguous as attempt ids hold no NUL (one that does, and any other id type, gets the tuple, which no
    string key equals)."""
    if type(attempt_id) is str and type(span_id) is str and "\0" not in attempt_id:
        return f"{attempt_id}\0{span_id}"
    return (attempt_id, span_id)


def _strings(values: Any) -> bool:
    """Whether ``values`` is a plain collection of strings (what a ``within`` on a string field can be indexed by)."""
    return type(values) in (list, tuple, set, frozenset) and all(type(v) is str for v in values)


def _start_key(rollout: Rollout, position: int) -> Optional[Tuple[float, int]]:
    """A rollout's entry in the start-time index: its start time and position; None for a start time that is not a
    number (which no ``at_least`` condition matches)."""
    started: Any = rollout.start_time
    return (started, position) if _number(started) else None


def _number(value: Any) -> bool:
    return type(value) in (int, float) and not math.isnan(value)


def _merged_page(lists: List[Sequence[int]], offset: int, limit: int) -> List[int]:
    """``merge(lists)[offset:offset + limit]`` (``limit=-1``: to the end) of disjoint sorted lists, without walking
    the first ``offset`` items: the page's first item is found by bisection over the position values."""
    if len(lists) == 1:
        return list(lists[0][offset : None if limit == -1 else offset + limit])
    if offset >= sum(len(found) for found in lists):
        return []
    low, high = 0, max(found[-1] for found in lists if found)
    while low < high:  # the smallest position with more than ``offset`` items at or below it
        middle = (low + high) // 2
        if sum(bisect.bisect_right(found, middle) for found in lists) > offset:
            high = middle
        else:
            low = middle + 1
    starts = [itertools.islice(found, bisect.bisect_left(found, low), None) for found in lists]
    return list(itertools.islice(heapq.merge(*starts), None if limit == -1 else limit))


@types.coroutine
def _next_turn() -> Generator[None, None, None]:
    """``asyncio.sleep(0)`` without its outer call: a bare yield, on which the task runs again behind the ready ones."""
    yield


def scheduling_point() -> Awaitable[None]:
    """What every store call awaits after its work, as it would await I/O, so that concurrent workers take turns: a
    bare yield on asyncio (anyio's checkpoint, without finding the backend per call), anyio's checkpoint elsewhere."""
    if asyncio._get_running_loop() is not None:
        return _next_turn()
    return anyio.lowlevel.checkpoint()


class MemoryBackend:
    """A :class:`~agentlightning.store.backend.StorageBackend` (and its own transaction) over dicts."""

    shared_across_processes = False

    def __init__(
        self,
        *,
        memory_budget_bytes: Optional[int] = None,
        span_size_estimator: Optional[Callable[[Span], int]] = None,
    ) -> None:
        if memory_budget_bytes is not None and (
            isinstance(memory_budget_bytes, bool) or not isinstance(memory_budget_bytes, int) or memory_budget_bytes < 0
        ):
            raise ValueError(f"memory_budget_bytes must be an integer >= 0 or None, got {memory_budget_bytes!r}")
        self.memory_budget_bytes = memory_budget_bytes
        self._estimate = span_size_estimator or estimate_span_size
        self._lock = threading.Lock()
        self._rollouts: Dict[str, Rollout] = {}
        self._order: Dict[str, int] = {}
        self._ids: List[str] = []
        self._status_pos: Dict[str, List[int]] = {}
        self._by_start: List[Tuple[float, int]] = []  # (start time, position), sorted: pages read by key
        self._attempts: Dict[str, List[Attempt]] = {}
        self._attempt_pos: Dict[Tuple[str, str], int] = {}
        self._attempt_count = 0
        self._queue: Deque[str] = deque()
        self._queued: Set[str] = set()
        self._sequences: Dict[str, int] = {}
        self._spans: Dict[str, Dict[Tuple[str, str], PackedSpan]] = {}
        self._span_bytes: Dict[str, int] = {}
        self._span_count = 0
        self._total_span_bytes = 0
        self._evicted: Set[str] = set()
        self._evicted_spans = 0
        self._candidates: List[Tuple[float, int, str]] = []
        self._candidate_ids: Set[str] = set()
        self._resources: Dict[str, ResourcesUpdate] = {}
        self._latest_resources: Optional[str] = None
        self._workers: Dict[str, Worker] = {}
        self._closed = False

    # -- StorageBackend ---------------------------------------------------------------------------------------------

    async def run(self, fn: Callable[[Any], T], *, write: bool) -> T:
        with self._lock:
            result = fn(self)
        await scheduling_point()
        return result

    def run_sync(self, fn: Callable[[Any], T], *, write: bool) -> T:
        with self._lock:
            return fn(self)

    def change_token(self) -> Any:
        return 0

    def statistics(self) -> Dict[str, Any]:
        with self._lock:
            if self.memory_budget_bytes is None:  # estimated on demand: keeps the estimate off the write path
                total = sum(
                    max(0, int(self._estimate(unpack_span(s)))) for b in self._spans.values() for s in b.values()
                )
            else:
                total = self._total_span_bytes
            return {
                "total_span_bytes": total,
                "evicted_rollouts": len(self._evicted),
                "evicted_spans": self._evicted_spans,
                "memory_budget_bytes": self.memory_budget_bytes,
            }

    def close(self) -> None:
        self._closed = True

    # -- rollouts ---------------------------------------------------------------------------------------------------

    def get_rollout(self, rollout_id: str) -> Optional[Rollout]:
        return self._rollouts.get(rollout_id)

    def insert_rollouts(self, rollouts: Sequence[Rollout]) -> None:
        for rollout in rollouts:
            if rollout.rollout_id in self._rollouts:
                raise ValueError(f"Rollout {rollout.rollout_id} already exists")
        for rollout in rollouts:
            rid = rollout.rollout_id
            self._rollouts[rid] = rollout
            self._order[rid] = len(self._ids)
            self._status_pos.setdefault(rollout.status, []).append(len(self._ids))  # the highest position yet
            key = _start_key(rollout, len(self._ids))
            if key is not None:
                bisect.insort(self._by_start, key)  # at the end (no move) while start times grow
            self._ids.append(rid)
            self._on_status(rollout)

    def update_rollout(self, rollout: Rollout) -> None:
        rid = rollout.rollout_id
        old = self._rollouts.get(rid)
        if old is None:
            raise ValueError(f"Rollout {rid} does not exist")
        self._rollouts[rid] = rollout
        if old.start_time is not rollout.start_time:
            self._move_start_key(old, rollout)
        if old.status != rollout.status:
            pos = self._order[rid]
            previous = self._status_pos[old.status]
            del previous[bisect.bisect_left(previous, pos)]
            bisect.insort(self._status_pos.setdefault(rollout.status, []), pos)
            self._on_status(rollout)

    def _move_start_key(self, old: Rollout, new: Rollout) -> None:
        pos = self._order[new.rollout_id]
        before, after = _start_key(old, pos), _start_key(new, pos)
        if before == after:
            return
        if before is not None:
            del self._by_start[bisect.bisect_left(self._by_start, before)]
        if after is not None:
            bisect.insort(self._by_start, after)

    def iter_rollouts(
        self, *, status_in: Optional[Sequence[str]] = None, rollout_id_in: Optional[Sequence[str]] = None
    ) -> Iterable[Rollout]:
        if rollout_id_in is not None:
            rollouts = self._rollouts
            if status_in is None:
                ids = [i for i in dict.fromkeys(rollout_id_in) if i in rollouts]
            else:  # filtered before sorting: a poller's ids are mostly of unfinished rollouts
                ids = [
                    i
                    for i in dict.fromkeys(rollout_id_in)
                    if (r := rollouts.get(i)) is not None and r.status in status_in
                ]
            ids.sort(key=self._order.__getitem__)
            return [rollouts[i] for i in ids]
        if status_in is not None:
            positions = heapq.merge(*(self._status_pos.get(s, ()) for s in set(status_in)))
            return [self._rollouts[self._ids[p]] for p in positions]
        return list(self._rollouts.values())

    def count_rollouts(self) -> int:
        return len(self._rollouts)

    def _indexed(self, cond: Condition) -> Optional[List[Sequence[int]]]:
        """Disjoint sorted position lists whose union is exactly the rollouts ``cond`` matches; None: no index."""
        value = cond.value
        if cond.field == "status" and cond.op == "exact" and type(value) is str:
            return [self._status_pos.get(value, [])]
        if cond.field == "status" and cond.op == "within" and _strings(value):
            return [self._status_pos.get(v, []) for v in set(value)]
        if cond.field == "rollout_id" and cond.op == "exact" and type(value) is str:
            return [[self._order[value]] if value in self._order else []]
        if cond.field == "rollout_id" and cond.op == "within" and _strings(value):
            return [sorted(self._order[v] for v in set(value) if v in self._order)]
        return None

    def _narrowed(self, where: Where) -> Tuple[Optional[List[Sequence[int]]], bool]:
        """(disjoint sorted position lists holding every match, None for all rollouts; whether they hold exactly the
        matches, so that no record needs testing)."""
        conjuncts = where.conjuncts()
        if conjuncts is None:
            return None, False
        lists: Optional[List[Sequence[int]]] = None
        exact = True
        for cond in conjuncts:
            found = self._indexed(cond)
            if found is None:
                exact = False
            elif lists is None:
                lists = found
            else:
                keep = set(itertools.chain.from_iterable(found))
                lists = [[p for p in heapq.merge(*lists) if p in keep]]
        return lists, exact

    def _positions(self, lists: Optional[List[Sequence[int]]]) -> Iterator[int]:
        if lists is None:
            return iter(range(len(self._ids)))
        return iter(lists[0]) if len(lists) == 1 else heapq.merge(*lists)

    def _matching_rollouts(self, where: Where, lists: Optional[List[Sequence[int]]]) -> List[Rollout]:
        rollouts, ids = self._rollouts, self._ids
        return [r for r in (rollouts[ids[p]] for p in self._positions(lists)) if where.test(r)]

    def _scoped_spans(self, where: Where, sort: Optional[Sort]) -> Optional[List[PackedSpan]]:
        """The packed spans of the rollout ``where`` is scoped to, in the query's order; None when ``where`` or
        ``sort`` needs more than the rollout, its attempt and the sequence ids."""
        if sort is not None and sort.field != "sequence_id":
            return None
        conjuncts = where.conjuncts()
        scope = [c for c in where.must if c.field == "rollout_id" and c.op == "exact" and type(c.value) is str]
        if conjuncts is None or not scope:
            return None
        rollout_id = scope[0].value
        attempts: Set[str] = set()
        for cond in conjuncts:
            if cond.op != "exact" or type(cond.value) is not str:
                return None
            if cond.field == "attempt_id":
                attempts.add(cond.value)
            elif cond.field != "rollout_id" or cond.value != rollout_id:
                return None
        self._check_not_evicted(rollout_id)
        packed = list(self._spans.get(rollout_id, {}).values())
        if attempts:
            attempt_id = attempts.pop()
            packed = [] if attempts else [p for p in packed if p[0] == attempt_id]
        packed.sort(key=packed_sequence_id, reverse=sort is not None and sort.order == "desc")
        return packed

    def select(
        self, kind: str, where: Where, sort: Optional[Sort], limit: int, offset: int
    ) -> Optional[Tuple[List[Any], int]]:
        """Rollouts and spans from the indexes (see :class:`~agentlightning.store.backend.QueryTransaction`)."""
        end = None if limit == -1 else offset + limit
        if kind == "spans":
            packed = self._scoped_spans(where, sort)
            if packed is None:
                return None
            return [unpack_span(p) for p in packed[offset:end]], len(packed)
        if kind != "rollouts":
            return None
        if sort is not None and sort.field == "start_time" and sort.order == "asc":
            keyed = self._page_by_start_time(where, limit, offset)
            if keyed is not None:
                return keyed
        lists, exact = self._narrowed(where)
        if sort is None and exact:
            if lists is None:
                return [self._rollouts[rid] for rid in self._ids[offset:end]], len(self._ids)
            page = _merged_page(lists, offset, limit)
            return [self._rollouts[self._ids[p]] for p in page], sum(len(found) for found in lists)
        if exact:
            matching = (
                list(self._rollouts.values())
                if lists is None
                else [self._rollouts[self._ids[p]] for p in self._positions(lists)]
            )
        else:
            matching = self._matching_rollouts(where, lists)
        if sort is not None:
            matching = sort_items(matching, sort.field, sort.order, Rollout)
        return matching[offset:end], len(matching)

    def _page_by_start_time(self, where: Where, limit: int, offset: int) -> Optional[Tuple[List[Any], int]]:
        """A page sorted by start time from the start-time index, when ``where`` bounds the start time from below
        (``at_least``, a page read by key): no sort, and without other filters no test of any record."""
        conjuncts = where.conjuncts()
        if conjuncts is None:
            return None
        bounds = [c.value for c in conjuncts if c.field == "start_time" and c.op == AT_LEAST]
        if not bounds or not all(_number(v) for v in bounds):
            return None
        first = bisect.bisect_left(self._by_start, (max(bounds), -1))
        others = Where(must=tuple(c for c in conjuncts if not (c.field == "start_time" and c.op == AT_LEAST)))
        end = None if limit == -1 else offset + limit
        if not others.must:
            keys = self._by_start[first + offset : None if end is None else first + end]
            return [self._rollouts[self._ids[p]] for _, p in keys], len(self._by_start) - first
        found = (self._rollouts[self._ids[p]] for _, p in itertools.islice(self._by_start, first, None))
        matching = [r for r in found if others.test(r)]
        return matching[offset:end], len(matching)

    def count(self, kind: str, where: Where) -> Optional[int]:
        if kind == "spans":
            packed = self._scoped_spans(where, None)
            return None if packed is None else len(packed)
        if kind != "rollouts":
            return None
        lists, exact = self._narrowed(where)
        if exact:
            return len(self._ids) if lists is None else sum(len(found) for found in lists)
        return len(self._matching_rollouts(where, lists))

    # -- attempts ---------------------------------------------------------------------------------------------------

    def insert_attempt(self, attempt: Attempt) -> None:
        key = (attempt.rollout_id, attempt.attempt_id)
        if key in self._attempt_pos:
            raise ValueError(f"Attempt {attempt.attempt_id} of rollout {attempt.rollout_id} already exists")
        attempts = self._attempts.setdefault(attempt.rollout_id, [])
        self._attempt_pos[key] = len(attempts)
        attempts.append(attempt)
        self._attempt_count += 1

    def update_attempt(self, attempt: Attempt) -> None:
        pos = self._attempt_pos.get((attempt.rollout_id, attempt.attempt_id))
        if pos is None:
            raise ValueError(f"Attempt {attempt.attempt_id} of rollout {attempt.rollout_id} does not exist")
        self._attempts[attempt.rollout_id][pos] = attempt

    def get_attempt(self, rollout_id: str, attempt_id: str) -> Optional[Attempt]:
        pos = self._attempt_pos.get((rollout_id, attempt_id))
        return None if pos is None else self._attempts[rollout_id][pos]

    def get_attempts(self, rollout_id: str) -> List[Attempt]:
        return list(self._attempts.get(rollout_id, ()))

    def get_latest_attempts(self, rollout_ids: Sequence[str]) -> Dict[str, Attempt]:
        out: Dict[str, Attempt] = {}
        for rid in rollout_ids:
            attempts = self._attempts.get(rid)
            if attempts:
                out[rid] = attempts[-1]
        return out

    def count_attempts(self) -> int:
        return self._attempt_count

    # -- queue ------------------------------------------------------------------------------------------------------

    def queue_push(self, rollout_ids: Sequence[str]) -> None:
        for rid in rollout_ids:
            if rid not in self._queued:
                self._queued.add(rid)
                self._queue.append(rid)

    def queue_pop(self, limit: int) -> List[str]:
        out: List[str] = []
        while self._queue and len(out) < limit:
            rid = self._queue.popleft()
            self._queued.discard(rid)
            out.append(rid)
        return out

    def queue_contains(self, rollout_id: str) -> bool:
        return rollout_id in self._queued

    # -- sequence ids -----------------------------------------------------------------------------------------------

    def sequence_next(self, rollout_id: str, count: int = 1) -> int:
        first = self._sequences.get(rollout_id, 0) + 1
        self._sequences[rollout_id] = first + count - 1
        return first

    def sequence_raise(self, rollout_id: str, value: int) -> None:
        if value > self._sequences.get(rollout_id, 0):
            self._sequences[rollout_id] = value

    # -- spans ------------------------------------------------------------------------------------------------------

    def insert_spans(self, spans: Sequence[Span]) -> List[bool]:
        flags: List[bool] = []
        added = 0
        bucket_of: Any = None
        bucket: Dict[Any, PackedSpan] = {}
        for span in spans:
            rid = span.rollout_id
            if rid != bucket_of or bucket_of is None:  # a batch is usually one rollout's: look its bucket up once
                found = self._spans.get(rid)
                if found is None:
                    found = self._spans[rid] = {}
                bucket, bucket_of = found, rid
            key = _span_key(span.attempt_id, span.span_id)
            if key in bucket:
                flags.append(False)
                continue
            bucket[key] = pack_span(span)
            if self.memory_budget_bytes is not None:  # without a budget, sizes are only needed by statistics()
                size = max(0, int(self._estimate(span)))
                self._span_bytes[rid] = self._span_bytes.get(rid, 0) + size
                self._total_span_bytes += size
            added += 1
            flags.append(True)
        self._span_count += added
        if added and self.memory_budget_bytes is not None:
            for rid in {s.rollout_id for s in spans}:
                rollout = self._rollouts.get(rid)
                if rollout is not None and rollout.status in FINISHED_STATUSES:
                    self._add_candidate(rollout)
            self._enforce_budget()
        return flags

    def add_next_span(self, span: Span, rollout_id: str, attempt_id: str, clock: Callable[[], float]) -> Optional[Span]:
        """The engine's allocated-sequence span transaction (``_store_next``) in its usual case, as one call on the
        store's own dicts: ``span`` (of ``rollout_id`` and ``attempt_id``) is a new span of a rollout that has spans
        already, its attempt's heartbeat moves only its time (``heartbeat_moves_time_only``), and no span budget is
        kept. It gets the rollout's next sequence id and is stored, and the attempt's heartbeat is recorded, in the
        engine's order. Returns the span, or None, touching nothing, when the case is not the usual one (the engine's
        transaction then decides: a missing rollout or attempt, a duplicate, a revival, a promotion, eviction)."""
        rollout = self._rollouts.get(rollout_id)
        pos = self._attempt_pos.get((rollout_id, attempt_id))
        bucket = self._spans.get(rollout_id)
        if rollout is None or pos is None or bucket is None or self.memory_budget_bytes is not None:
            return None
        attempts = self._attempts[rollout_id]
        attempt = attempts[pos]
        key = _span_key(span.attempt_id, span.span_id)
        if key in bucket or not heartbeat_moves_time_only(rollout, attempt):
            return None
        sequence_id = self._sequences[rollout_id] = self._sequences.get(rollout_id, 0) + 1
        span.sequence_id = sequence_id
        bucket[key] = pack_span(span)
        self._span_count += 1
        attempts[pos] = with_heartbeat(attempt, clock())
        return span

    def _check_not_evicted(self, rollout_id: str) -> None:
        if rollout_id in self._evicted:
            raise SpansEvictedError(
                f"Spans for rollout {rollout_id} have been evicted: the in-memory store keeps at most "
                f"memory_budget_bytes={self.memory_budget_bytes} of spans and drops those of the oldest finished "
                "rollouts beyond it (raise the budget or use a persistent store such as sqlite://)"
            )

    def get_spans(self, rollout_id: str, attempt_id: Optional[str] = None) -> List[Span]:
        self._check_not_evicted(rollout_id)
        bucket = self._spans.get(rollout_id)
        if not bucket:
            return []
        packed = list(bucket.values()) if attempt_id is None else [p for p in bucket.values() if p[0] == attempt_id]
        packed.sort(key=packed_sequence_id)
        return [unpack_span(p) for p in packed]

    def count_spans(self) -> int:
        return self._span_count

    # -- eviction ---------------------------------------------------------------------------------------------------

    def _on_status(self, rollout: Rollout) -> None:
        if self.memory_budget_bytes is not None and rollout.status in FINISHED_STATUSES:
            self._add_candidate(rollout)
            self._enforce_budget()

    def _add_candidate(self, rollout: Rollout) -> None:
        rid = rollout.rollout_id
        if rid not in self._candidate_ids and self._span_bytes.get(rid):
            self._candidate_ids.add(rid)
            heapq.heappush(self._candidates, (rollout.start_time, self._order.get(rid, 0), rid))

    def _enforce_budget(self) -> None:
        budget = self.memory_budget_bytes
        if budget is None:
            return
        while self._total_span_bytes > budget and self._candidates:
            _, _, rid = heapq.heappop(self._candidates)
            self._candidate_ids.discard(rid)
            rollout = self._rollouts.get(rid)
            if rollout is None or rollout.status not in FINISHED_STATUSES:
                continue
            self._evict(rid)

    def _evict(self, rollout_id: str) -> None:
        bucket = self._spans.pop(rollout_id, None) or {}
        self._total_span_bytes -= self._span_bytes.pop(rollout_id, 0)
        self._span_count -= len(bucket)
        self._evicted_spans += len(bucket)
        self._evicted.add(rollout_id)

    # -- resources --------------------------------------------------------------------------------------------------

    def get_resources(self, resources_id: str) -> Optional[ResourcesUpdate]:
        return self._resources.get(resources_id)

    def put_resources(self, update: ResourcesUpdate) -> None:
        self._resources[update.resources_id] = update
        self._latest_resources = update.resources_id

    def get_latest_resources(self) -> Optional[ResourcesUpdate]:
        return None if self._latest_resources is None else self._resources.get(self._latest_resources)

    def iter_resources(self) -> Iterable[ResourcesUpdate]:
        return list(self._resources.values())

    def count_resources(self) -> int:
        return len(self._resources)

    # -- workers ----------------------------------------------------------------------------------------------------

    def get_worker(self, worker_id: str) -> Optional[Worker]:
        return self._workers.get(worker_id)

    def put_worker(self, worker: Worker) -> None:
        self._workers[worker.worker_id] = worker

    def iter_workers(self) -> Iterable[Worker]:
        return list(self._workers.values())

    def count_workers(self) -> int:
        return len(self._workers)
