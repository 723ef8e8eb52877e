"""The LightningStore written once over a :class:`~agentlightning.store.backend.StorageBackend`.

Every method builds a function over a storage transaction and hands it to ``backend.run``; the status logic lives in
:mod:`.transitions`, query semantics in :mod:`.query`, the idle-store watchdog in :mod:`.watchdog` and the wake-ups of
``wait_for_rollouts`` in :mod:`.waiting`. A backend therefore implements storage and atomicity only.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    TypeVar,
    Union,
)

import anyio
import attrs

from agentlightning.types.core import (
    FINISHED_STATUSES,
    QUEUING_STATUSES,
    ROLLOUT_MODES,
    Attempt,
    AttemptedRollout,
    AttemptStatus,
    EnqueueRolloutRequest,
    PaginatedResult,
    Rollout,
    RolloutConfig,
    RolloutMode,
    RolloutStatus,
    TaskInput,
    Worker,
    WorkerStatus,
)
from agentlightning.types.resources import NamedResources, ResourcesUpdate
from agentlightning.types.tracer import Span

from . import transitions as tr
from .backend import StorageBackend, StorageTransaction
from .base import (
    UNSET,
    FilterLogic,
    LightningStore,
    LightningStoreCapabilities,
    LightningStoreStatistics,
    SortOrder,
    Unset,
)
from .errors import InvalidRequestError, NotFoundError, StoreClosedError
from .limits import check_span, check_value
from .query import AT_LEAST, Condition, check_logic, run_query, select
from .request_keys import (
    RecordedResponse,
    RequestAlreadyAppliedError,
    RequestKey,
    current_request_key,
    decode_result,
    encode_result,
)
from .waiting import CompletionNotifier, RecheckPacer
from .watchdog import Debouncer, Watchdog

__all__ = ["EngineLightningStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

CHANGE_POLL_SECONDS = 0.05
"""How often ``wait_for_rollouts`` checks ``backend.change_token()`` when other processes may write."""

MIN_WAIT_SCAN_SECONDS = 0.1
"""Without a watchdog thread, ``wait_for_rollouts`` runs the timeout scan at most this often (or per debounce)."""


def _rollout_not_found(rollout_id: str) -> NotFoundError:
    return NotFoundError(f"Rollout {rollout_id} not found")


def _config(config: Any) -> RolloutConfig:
    """A private copy of a rollout config (a mapping is read as its JSON form)."""
    if config is None:
        return RolloutConfig()
    if isinstance(config, Mapping):
        from agentlightning.types.serialization import from_dict

        return from_dict(dict(config), RolloutConfig)
    if not isinstance(config, RolloutConfig):
        raise InvalidRequestError(f"config must be a RolloutConfig or a mapping, got {type(config).__name__}")
    return attrs.evolve(config, retry_condition=list(config.retry_condition))


def _mode(mode: Any) -> Optional[RolloutMode]:
    if mode is not None and mode not in ROLLOUT_MODES:
        raise InvalidRequestError(f"Invalid rollout mode {mode!r}; expected one of {', '.join(ROLLOUT_MODES)} or None")
    return mode  # type: ignore[no-any-return,unused-ignore]


def _start_time_scope(start_time_from: Any) -> List[Condition]:
    """``query_rollouts``' ``start_time_from`` as the condition it adds (none for ``None``)."""
    if start_time_from is None:
        return []
    number = isinstance(start_time_from, (int, float)) and not isinstance(start_time_from, bool)
    if not number or math.isnan(start_time_from):
        raise InvalidRequestError(f"start_time_from must be a number (a Unix time), got {start_time_from!r}")
    return [Condition("start_time", AT_LEAST, float(start_time_from))]


def _metadata(metadata: Any) -> Optional[Dict[str, Any]]:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise InvalidRequestError(f"metadata must be a mapping or None, got {type(metadata).__name__}")
    plain = dict(metadata)
    check_value(plain, "metadata")
    return plain


REQUEST_KEY_EXPIRY_SECONDS = 60.0
"""How often (at most) a store process deletes expired idempotency keys (see ``expire_request_keys``)."""


def _claiming(fn: Callable[[StorageTransaction, tr.Effects], T], claim: RequestKey) -> Callable[..., T]:
    """``fn`` preceded, in its transaction, by recording ``claim``'s key: a key recorded already means an earlier
    try of the request was applied, and this write is refused untouched."""

    def claimed(tx: StorageTransaction, fx: tr.Effects) -> T:
        result = fn(tx, fx)
        # recorded after the write, in its transaction: a key recorded already rolls the write back
        encoded = encode_result(result)
        if not tx.claim_request_key(claim.key, time.time(), encoded):  # type: ignore[attr-defined]
            claim.applied_before = True
            raise RequestAlreadyAppliedError(f"request {claim.key!r} was applied already")
        claim.result_recorded = encoded is not None
        return result

    return claimed


def _replay(tx: StorageTransaction, recorded: bytes) -> Any:
    """A recorded write result, its records read back from the store."""
    return decode_result(recorded, tx)


def _group_by_attempt(spans: Sequence[Span]) -> Dict[Tuple[str, str], Sequence[Span]]:
    groups: Dict[Tuple[str, str], List[Span]] = {}
    for span in spans:
        groups.setdefault((span.rollout_id, span.attempt_id), []).append(span)
    return dict(groups)


def _span_target(tx: StorageTransaction, rollout_id: str, attempt_id: str) -> Tuple[Rollout, Attempt]:
    """The rollout and attempt a span is added to (NotFoundError when either is missing)."""
    rollout = tx.get_rollout(rollout_id)
    if rollout is None:
        raise _rollout_not_found(rollout_id)
    attempt = tx.get_attempt(rollout_id, attempt_id)
    if attempt is None:
        raise NotFoundError(f"Attempt {attempt_id} not found for rollout {rollout_id}")
    return rollout, attempt


def _with_latest(rollout: Rollout, attempt: Optional[Attempt]) -> Union[Rollout, AttemptedRollout]:
    return rollout if attempt is None else AttemptedRollout.of(rollout, attempt)


class EngineLightningStore(LightningStore):
    """A complete LightningStore over a storage backend.

    Args:
        backend: the storage (memory dicts, a SQLite file, ...).
        scan_debounce_seconds: minimum seconds between two timeout scans triggered by store calls (0: every call).
        watchdog_interval: seconds between scans of a background thread, so that timeouts fire on an idle store too;
            None disables the thread.
        clock: the time source of every timestamp, timeout check and scan debounce (seconds, like ``time.time``).
            None: the wall clock for timestamps and the monotonic clock for debouncing. Tests pass a manual clock to
            drive timeouts without sleeping.
    """

    def __class_getitem__(cls, item: Any) -> Any:
        """``EngineLightningStore[T]`` is the class itself (upstream annotated ``CollectionBasedLightningStore[T]``)."""
        return cls

    def __init__(
        self,
        backend: StorageBackend,
        *,
        scan_debounce_seconds: float = 10.0,
        watchdog_interval: Optional[float] = 1.0,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        self.backend = backend
        self._clock: Callable[[], float] = clock or time.time
        self._debouncer = Debouncer(scan_debounce_seconds, clock or time.monotonic)
        self._notifier = CompletionNotifier()
        self._created = time.monotonic()
        self._closed = False
        self._keys_expired_at = 0.0
        self._watchdog: Optional[Watchdog] = None
        if watchdog_interval is not None:
            self._watchdog = Watchdog(self, "_watchdog_tick", watchdog_interval, clock=self._clock)

    # -- plumbing -------------------------------------------------------------------------------------------------

    @property
    def capabilities(self) -> LightningStoreCapabilities:
        return LightningStoreCapabilities(
            thread_safe=True,
            async_safe=True,
            zero_copy=bool(getattr(self.backend, "shared_across_processes", False)),
            otlp_traces=False,
        )

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"{type(self).__name__} is closed")

    async def _run(self, fn: Callable[[StorageTransaction, tr.Effects], T], *, write: bool, scan: bool = False) -> T:
        """Run ``fn`` in one transaction (preceded by the debounced timeout scan when ``scan``), then wake waiters."""
        if self._closed:  # the check without a call on every store call
            self._check_open()
        effects = tr.Effects()
        claim = current_request_key() if write else None
        if claim is not None:
            if not self.keeps_request_keys:
                claim = None
            elif claim.replay is not None:  # the write was applied by an earlier try: its result, not again
                replayed, claim.replay, claim.claimed = claim.replay, None, True
                return await self._run(lambda tx, _: _replay(tx, replayed), write=False)
            else:
                fn = _claiming(fn, claim)
        try:
            if scan and self._claim_scan():

                def scanned(tx: StorageTransaction) -> T:
                    tr.scan_unhealthy(tx, self._clock(), effects)
                    return fn(tx, effects)

                result = await self.backend.run(scanned, write=True)
                if claim is not None:
                    claim.claimed = True
                return result
            result = await self.backend.run(lambda tx: fn(tx, effects), write=write)
            if claim is not None:
                claim.claimed = True
            return result
        except RequestAlreadyAppliedError:
            if claim is not None:  # a backend may find the key recorded only at its commit
                claim.applied_before, claim.result_recorded = True, False
            raise
        finally:
            # also when ``fn`` failed: a backend without rollback kept the scan's writes (a spurious wake-up after a
            # rollback is harmless: waiters re-read before they answer)
            if effects.finished:
                self._notifier.notify(effects.finished)

    def _claim_scan(self) -> bool:
        """Whether this store call runs the timeout scan first (debounced; a subclass may leave scans to another
        process)."""
        return self._debouncer.claim()

    # -- idempotency keys kept in the store (see agentlightning.store.request_keys) -----------------------------

    @property
    def keeps_request_keys(self) -> bool:
        """Whether this store records the idempotency keys of the requests whose writes it applied."""
        return bool(getattr(self.backend, "keeps_request_keys", False))

    async def request_response(self, key: str, *, ttl: float) -> Optional[RecordedResponse]:
        """What ``key`` recorded: ``(status, body, result)``, status and body None while the answer is not saved,
        result None when the write's result was not recorded; None when the key is unknown or older than ``ttl``
        seconds."""
        self._check_open()
        found = await self.backend.run(lambda tx: tx.get_request_key(key), write=False)  # type: ignore[attr-defined]
        if found is None or time.time() - found[0] > ttl:
            return None
        return found[1], found[2], found[3]

    async def save_request_response(self, key: str, status: int, body: bytes) -> None:
        """Attach the answer of the request that recorded ``key`` (a result too large to record)."""
        self._check_open()
        await self.backend.run(lambda tx: tx.save_request_response(key, status, body), write=True)  # type: ignore[attr-defined]

    async def expire_request_keys(self, *, ttl: float, force: bool = False) -> int:
        """Forget the keys recorded more than ``ttl`` seconds ago; at most once per
        :data:`REQUEST_KEY_EXPIRY_SECONDS` in this process unless ``force`` (a server calls it after its keyed
        requests). Returns how many were forgotten."""
        self._check_open()
        now = time.time()
        if not force and now - self._keys_expired_at < REQUEST_KEY_EXPIRY_SECONDS:
            return 0
        self._keys_expired_at = now
        return int(await self.backend.run(lambda tx: tx.expire_request_keys(now - ttl), write=True))  # type: ignore[attr-defined]

    def _watchdog_tick(self, now: float) -> None:
        if self._closed:
            return
        effects = tr.Effects()
        self.backend.run_sync(lambda tx: tr.scan_unhealthy(tx, now, effects), write=True)
        if effects.finished:
            self._notifier.notify(effects.finished)

    async def scan_unhealthy_rollouts(self) -> None:
        """Run the timeout scan now, whatever the debounce says."""
        await self._run(lambda tx, fx: tr.scan_unhealthy(tx, self._clock(), fx), write=True)

    async def statistics(self) -> LightningStoreStatistics:
        def read(tx: StorageTransaction, _: tr.Effects) -> LightningStoreStatistics:
            return LightningStoreStatistics(
                name=type(self).__name__,
                total_rollouts=tx.count_rollouts(),
                total_attempts=tx.count_attempts(),
                total_spans=tx.count_spans(),
                total_resources=tx.count_resources(),
                total_workers=tx.count_workers(),
                uptime=time.monotonic() - self._created,
            )

        stats = await self._run(read, write=False)
        stats.update(self.backend.statistics())  # type: ignore[typeddict-item]
        return stats

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watchdog is not None:
            watchdog, self._watchdog = self._watchdog, None
            await anyio.to_thread.run_sync(watchdog.stop)
        self.backend.close()

    # -- rollouts and the queue ----------------------------------------------------------------------------------

    @staticmethod
    def _new_rollout(
        tx: StorageTransaction,
        now: float,
        status: str,
        input: TaskInput,
        mode: Optional[RolloutMode],
        resources_id: Optional[str],
        config: Optional[RolloutConfig],
        metadata: Optional[Dict[str, Any]],
        latest_resources: Optional[str],
    ) -> Rollout:
        meta = _metadata(metadata)
        return Rollout(
            rollout_id=tr.new_rollout_id(),
            input=input,
            start_time=now,
            mode=_mode(mode),
            resources_id=resources_id if resources_id is not None else latest_resources,
            status=status,  # type: ignore[arg-type]
            config=_config(config),
            metadata=meta if meta is not None else {},
        )

    @staticmethod
    def _latest_resources_id(tx: StorageTransaction, resources_id: Optional[str]) -> Optional[str]:
        if resources_id is not None:
            return None
        latest = tx.get_latest_resources()
        return latest.resources_id if latest is not None else None

    async def start_rollout(
        self,
        input: TaskInput,
        mode: Optional[RolloutMode] = None,
        resources_id: Optional[str] = None,
        config: Optional[RolloutConfig] = None,
        metadata: Optional[Dict[str, Any]] = None,
        worker_id: Optional[str] = None,
    ) -> AttemptedRollout:
        check_value(input, "the rollout input")

        def op(tx: StorageTransaction, fx: tr.Effects) -> AttemptedRollout:
            now = self._clock()
            latest = self._latest_resources_id(tx, resources_id)
            rollout = self._new_rollout(tx, now, "preparing", input, mode, resources_id, config, metadata, latest)
            tx.insert_rollouts([rollout])
            attempt = tr.new_attempt(tx, rollout.rollout_id, worker_id, now)
            if worker_id:
                tr.sync_worker(tx, worker_id, attempt, now)
            return AttemptedRollout.of(rollout, attempt)

        return await self._run(op, write=True, scan=True)

    async def enqueue_rollout(
        self,
        input: TaskInput,
        mode: Optional[RolloutMode] = None,
        resources_id: Optional[str] = None,
        config: Optional[RolloutConfig] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> Rollout:
        request = EnqueueRolloutRequest(
            input=input,
            mode=_mode(mode),
            resources_id=resources_id,
            config=config,
            metadata=metadata,
        )
        return (await self.enqueue_many_rollouts([request]))[0]

    async def enqueue_many_rollouts(self, rollouts: Sequence[EnqueueRolloutRequest]) -> Sequence[Rollout]:
        requests = list(rollouts)
        for i, request in enumerate(requests):
            if not isinstance(request, EnqueueRolloutRequest):
                raise InvalidRequestError(
                    f"rollouts[{i}] must be an EnqueueRolloutRequest, got {type(request).__name__}"
                )
            check_value(request.input, "the rollout input")
            check_value(request.metadata, "metadata")

        def op(tx: StorageTransaction, fx: tr.Effects) -> List[Rollout]:
            now = self._clock()
            latest = self._latest_resources_id(tx, None)
            created = [
                self._new_rollout(tx, now, "queuing", r.input, r.mode, r.resources_id, r.config, r.metadata, latest)
                for r in requests
            ]
            tx.insert_rollouts(created)
            tx.queue_push([r.rollout_id for r in created])
            return created

        return await self._run(op, write=True, scan=True)

    async def dequeue_rollout(self, worker_id: Optional[str] = None) -> Optional[AttemptedRollout]:
        claimed = await self.dequeue_many_rollouts(limit=1, worker_id=worker_id)
        return claimed[0] if claimed else None

    async def dequeue_many_rollouts(
        self, *, limit: int = 1, worker_id: Optional[str] = None
    ) -> Sequence[AttemptedRollout]:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidRequestError(f"limit must be an integer, got {limit!r}")

        def op(tx: StorageTransaction, fx: tr.Effects) -> List[AttemptedRollout]:
            now = self._clock()
            claimed: List[AttemptedRollout] = []
            while len(claimed) < limit:
                ids = tx.queue_pop(limit - len(claimed))
                if not ids:
                    break
                for rollout_id in ids:
                    rollout = tx.get_rollout(rollout_id)
                    if rollout is None or rollout.status not in QUEUING_STATUSES:
                        logger.debug("dequeue skips %s: no longer queuing", rollout_id)
                        continue
                    attempt = tr.new_attempt(tx, rollout_id, worker_id, now)
                    rollout = tr.write_rollout(tx, rollout, {"status": "preparing"}, now, fx)
                    claimed.append(AttemptedRollout.of(rollout, attempt))
            if worker_id:
                if claimed:
                    tr.sync_worker(tx, worker_id, claimed[-1].attempt, now, dequeued=True)
                else:
                    tr.mark_worker_idle(tx, worker_id, now)
            return claimed

        if limit <= 0:
            return []
        return await self._run(op, write=True, scan=True)

    async def start_attempt(self, rollout_id: str, worker_id: Optional[str] = None) -> AttemptedRollout:
        def op(tx: StorageTransaction, fx: tr.Effects) -> AttemptedRollout:
            rollout = tx.get_rollout(rollout_id)
            if rollout is None:
                raise _rollout_not_found(rollout_id)
            now = self._clock()
            attempt = tr.new_attempt(tx, rollout_id, worker_id, now)
            rollout = tr.write_rollout(tx, rollout, {"status": "preparing"}, now, fx)
            if worker_id:
                tr.sync_worker(tx, worker_id, attempt, now)
            return AttemptedRollout.of(rollout, attempt)

        return await self._run(op, write=True, scan=True)

    async def query_rollouts(
        self,
        *,
        status_in: Optional[Sequence[RolloutStatus]] = None,
        rollout_id_in: Optional[Sequence[str]] = None,
        rollout_id_contains: Optional[str] = None,
        filter_logic: FilterLogic = "and",
        sort_by: Optional[str] = None,
        sort_order: SortOrder = "asc",
        limit: int = -1,
        offset: int = 0,
        status: Optional[Sequence[RolloutStatus]] = None,
        rollout_ids: Optional[Sequence[str]] = None,
        mode_in: Optional[Sequence[Optional[RolloutMode]]] = None,
        start_time_from: Optional[float] = None,
    ) -> PaginatedResult[Union[Rollout, AttemptedRollout]]:
        if status is not None:
            warnings.warn("query_rollouts(status=...) is deprecated; use status_in", DeprecationWarning, stacklevel=2)
            if status_in is None:
                status_in = status
        if rollout_ids is not None:
            warnings.warn(
                "query_rollouts(rollout_ids=...) is deprecated; use rollout_id_in", DeprecationWarning, stacklevel=2
            )
            if rollout_id_in is None:
                rollout_id_in = rollout_ids
        logic = check_logic(filter_logic)
        filters: Dict[str, Any] = {
            "status": {"within": status_in},
            "rollout_id": {"within": rollout_id_in, "contains": rollout_id_contains},
            "mode": {"within": mode_in},
            "_aggregate": logic,
        }
        hinted = logic == "and"
        started = _start_time_scope(start_time_from)

        def candidates(tx: StorageTransaction) -> Iterable[Rollout]:
            found = tx.iter_rollouts(
                status_in=list(status_in) if hinted and status_in is not None else None,
                rollout_id_in=list(rollout_id_in) if hinted and rollout_id_in is not None else None,
            )
            return [r for r in found if started[0].test(r)] if started else found

        def op(tx: StorageTransaction, fx: tr.Effects) -> PaginatedResult[Union[Rollout, AttemptedRollout]]:
            page: PaginatedResult[Rollout] = select(
                tx,
                "rollouts",
                lambda: candidates(tx),
                model=Rollout,
                filters=filters,
                scope=started,
                sort_by=sort_by,
                sort_order=sort_order,
                limit=limit,
                offset=offset,
            )
            if not page.items:
                return PaginatedResult(items=[], limit=page.limit, offset=page.offset, total=page.total)
            latest = tx.get_latest_attempts([r.rollout_id for r in page.items])
            items = [_with_latest(r, latest.get(r.rollout_id)) for r in page.items]
            return PaginatedResult(items=items, limit=page.limit, offset=page.offset, total=page.total)

        return await self._run(op, write=False, scan=True)

    async def get_rollout_by_id(self, rollout_id: str) -> Optional[Union[Rollout, AttemptedRollout]]:
        def op(tx: StorageTransaction, fx: tr.Effects) -> Optional[Union[Rollout, AttemptedRollout]]:
            rollout = tx.get_rollout(rollout_id)
            if rollout is None:
                return None
            return _with_latest(rollout, tx.get_latest_attempts([rollout_id]).get(rollout_id))

        return await self._run(op, write=False, scan=True)

    async def update_rollout(
        self,
        rollout_id: str,
        input: TaskInput | Unset = UNSET,
        mode: Optional[RolloutMode] | Unset = UNSET,
        resources_id: Optional[str] | Unset = UNSET,
        status: RolloutStatus | Unset = UNSET,
        config: Optional[RolloutConfig] | Unset = UNSET,
        metadata: Optional[Dict[str, Any]] | Unset = UNSET,
    ) -> Rollout:
        changes: Dict[str, Any] = {}
        if input is not UNSET:
            check_value(input, "the rollout input")
            changes["input"] = input
        if mode is not UNSET:
            changes["mode"] = _mode(mode)
        if resources_id is not UNSET:
            changes["resources_id"] = resources_id
        if status is not UNSET:
            changes["status"] = tr.check_rollout_status(status)
        if config is not UNSET:
            changes["config"] = _config(config)
        if metadata is not UNSET:
            changes["metadata"] = _metadata(metadata)

        def op(tx: StorageTransaction, fx: tr.Effects) -> Rollout:
            rollout = tx.get_rollout(rollout_id)
            if rollout is None:
                raise NotFoundError(
                    f"Rollout {rollout_id} not found (Item with rollout_id={rollout_id!r} does not exist)"
                )
            updated = tr.write_rollout(tx, rollout, changes, self._clock(), fx)
            return updated.as_rollout() if isinstance(updated, AttemptedRollout) else updated

        return await self._run(op, write=True, scan=True)

    async def _finished_among(self, ids: Sequence[str], *, scan: bool = False, known: bool = False) -> Set[str]:
        """The ids that need no more waiting: finished rollouts, and ids the store does not know.

        ``known``: every id was stored at an earlier check (rollouts are never deleted), so one indexed query for
        the finished ones among them suffices; a waiter on N rollouts then never decodes N records per poll.
        """

        def op(tx: StorageTransaction, fx: tr.Effects) -> Set[str]:
            if known:
                wanted = set(ids)
                hits = tx.iter_rollouts(status_in=sorted(FINISHED_STATUSES), rollout_id_in=list(ids))
                return {r.rollout_id for r in hits if r.rollout_id in wanted and r.status in FINISHED_STATUSES}
            done = set()
            for rollout_id in ids:
                rollout = tx.get_rollout(rollout_id)
                if rollout is None or rollout.status in FINISHED_STATUSES:
                    done.add(rollout_id)
            return done

        return await self._run(op, write=False, scan=scan)

    @staticmethod
    def _finished_rollouts(tx: StorageTransaction, ids: List[str]) -> List[Rollout]:
        """The finished rollouts among ``ids``, in their order: one indexed read of the finished ones (a poller's
        pending ids are mostly unfinished, so they are never decoded)."""
        wanted = set(ids)
        hits = {
            r.rollout_id: r
            for r in tx.iter_rollouts(status_in=sorted(FINISHED_STATUSES), rollout_id_in=list(wanted))
            if r.rollout_id in wanted and r.status in FINISHED_STATUSES
        }
        return [hits[i] for i in ids if i in hits]

    async def wait_for_rollouts(self, *, rollout_ids: List[str], timeout: Optional[float] = None) -> List[Rollout]:
        ids = list(rollout_ids)
        if timeout is not None and not isinstance(timeout, (int, float)):
            raise InvalidRequestError(f"timeout must be a number of seconds or None, got {timeout!r}")
        deadline = None if timeout is None else anyio.current_time() + max(float(timeout), 0.0)
        shared = bool(getattr(self.backend, "shared_across_processes", False))
        # without a watchdog thread, the waiter itself runs the (debounced) timeout scan now and then
        scan_every = None if self._watchdog is not None else max(self._debouncer.interval, MIN_WAIT_SCAN_SECONDS)
        slice_cap = min(
            (c for c in (CHANGE_POLL_SECONDS if shared else None, scan_every) if c is not None), default=None
        )
        if timeout is not None and timeout <= 0:  # a poll (the algorithm's usual call): one indexed read
            return await self._run(lambda tx, fx: self._finished_rollouts(tx, ids), write=False, scan=True)
        key, waiter = self._notifier.register(ids)
        try:
            token = self.backend.change_token() if shared else None
            last_scan = anyio.current_time()
            pacer = RecheckPacer()
            remaining = set(ids) - await self._finished_among(ids, scan=True)
            # woken once all remaining ids were reported finished (timer slices aside), not once per finish
            self._notifier.wake_when_all(waiter, remaining)
            reported: Set[str] = set()
            while remaining:
                now = anyio.current_time()
                if deadline is not None and now >= deadline:
                    break
                wait: Optional[float] = None if deadline is None else deadline - now
                if slice_cap is not None:
                    wait = slice_cap if wait is None else min(wait, slice_cap)
                if wait is None:
                    await waiter.event.wait()
                else:
                    with anyio.move_on_after(wait):
                        await waiter.event.wait()
                # ids reported finished are re-read (a report can be spurious: its write rolled back) only once every
                # remaining id has been reported, in one read, rather than once per wake-up
                reported |= self._notifier.take_hits(waiter) & remaining
                check = reported if reported >= remaining else set()
                # a full re-read of the remaining ids is paced by its cost, so a waiter on many ids stays cheap
                now = anyio.current_time()
                full = pacer.due(now, len(remaining))
                if shared and full:
                    current = self.backend.change_token()
                    if current != token:  # an unpaced change stays unseen until the next due check
                        token = current
                        check = set(remaining)
                scan = scan_every is not None and now - last_scan >= scan_every
                if scan:
                    last_scan = now
                    if full:
                        check = set(remaining)
                if check or scan:
                    started = anyio.current_time()
                    remaining -= await self._finished_among(list(check), scan=scan, known=True)
                    pacer.record(started, anyio.current_time(), len(check))
                if check:
                    reported = set()  # what the read did not confirm waits for a new report
                    self._notifier.wake_when_all(waiter, remaining)

            return await self._run(lambda tx, fx: self._finished_rollouts(tx, ids), write=False)
        finally:
            self._notifier.unregister(key)

    # -- attempts -------------------------------------------------------------------------------------------------

    async def query_attempts(
        self,
        rollout_id: str,
        *,
        sort_by: Optional[str] = "sequence_id",
        sort_order: SortOrder = "asc",
        limit: int = -1,
        offset: int = 0,
    ) -> PaginatedResult[Attempt]:
        def op(tx: StorageTransaction, fx: tr.Effects) -> PaginatedResult[Attempt]:
            return select(
                tx,
                "attempts",
                lambda: tx.get_attempts(rollout_id),
                model=Attempt,
                scope=[Condition("rollout_id", "exact", rollout_id)],
                sort_by=sort_by,
                sort_order=sort_order,
                limit=limit,
                offset=offset,
            )

        return await self._run(op, write=False, scan=True)

    async def get_latest_attempt(self, rollout_id: str) -> Optional[Attempt]:
        return await self._run(
            lambda tx, fx: tx.get_latest_attempts([rollout_id]).get(rollout_id), write=False, scan=True
        )

    @staticmethod
    def _resolve_attempt(tx: StorageTransaction, rollout_id: str, attempt_id: str) -> Tuple[Rollout, Attempt]:
        rollout = tx.get_rollout(rollout_id)
        if rollout is None:
            raise _rollout_not_found(rollout_id)
        latest = tx.get_latest_attempts([rollout_id]).get(rollout_id)
        if latest is None:
            raise NotFoundError(f"No attempts found for rollout {rollout_id}")
        if attempt_id in ("latest", latest.attempt_id):
            return rollout, latest
        attempt = tx.get_attempt(rollout_id, attempt_id)
        if attempt is None:
            raise NotFoundError(f"Attempt {attempt_id} not found for rollout {rollout_id}")
        return rollout, attempt

    async def update_attempt(
        self,
        rollout_id: str,
        attempt_id: str,
        status: AttemptStatus | Unset = UNSET,
        worker_id: Optional[str] | Unset = UNSET,
        last_heartbeat_time: Optional[float] | Unset = UNSET,
        metadata: Optional[Dict[str, Any]] | Unset = UNSET,
    ) -> Attempt:
        changes: Dict[str, Any] = {}
        if status is not UNSET:
            changes["status"] = tr.check_attempt_status(status)
        if worker_id is not UNSET:
            changes["worker_id"] = worker_id
        if last_heartbeat_time is not UNSET:
            changes["last_heartbeat_time"] = last_heartbeat_time
        if metadata is not UNSET:
            changes["metadata"] = _metadata(metadata)

        def op(tx: StorageTransaction, fx: tr.Effects) -> Attempt:
            rollout, attempt = self._resolve_attempt(tx, rollout_id, attempt_id)
            now = self._clock()
            updated = tr.write_attempt(tx, rollout, attempt, changes, now, fx)
            if updated.worker_id and (worker_id or status is not UNSET):
                tr.sync_worker(tx, updated.worker_id, updated, now)
            return updated

        return await self._run(op, write=True, scan=True)

    # -- spans ----------------------------------------------------------------------------------------------------

    def _store_spans(self, tx: StorageTransaction, spans: Sequence[Span], fx: tr.Effects) -> List[Span]:
        """Check every (rollout, attempt) first, then insert group by group with one heartbeat per group."""
        if not spans:
            return []
        first = spans[0]
        rollout_id, attempt_id = first.rollout_id, first.attempt_id
        groups: Dict[Tuple[str, str], Sequence[Span]] = {(rollout_id, attempt_id): spans}
        for span in spans:  # a plain loop: this runs for every span, and a generator costs more per item
            if span.rollout_id != rollout_id or span.attempt_id != attempt_id:
                groups = _group_by_attempt(spans)  # a batch over several attempts (rare)
                break
        targets = [_span_target(tx, rollout_id, attempt_id) for rollout_id, attempt_id in groups]
        now = self._clock()
        several = len(targets) > 1
        stored: List[Span] = []
        for (checked_rollout, checked_attempt), group in zip(targets, groups.values(), strict=True):
            rollout, attempt = checked_rollout, checked_attempt
            top = group[0].sequence_id if len(group) == 1 else max([s.sequence_id for s in group])
            tx.sequence_raise(rollout.rollout_id, top)
            flags = tx.insert_spans(group)
            kept = group if all(flags) else [s for s, ok in zip(group, flags, strict=True) if ok]
            if len(kept) < len(group):
                for span, ok in zip(group, flags, strict=True):
                    if not ok:
                        logger.error(
                            "Duplicated span added: span %s of rollout %s attempt %s is already stored",
                            span.span_id,
                            span.rollout_id,
                            span.attempt_id,
                        )
            if kept:
                if several:  # re-read: an earlier group of this call may have changed the rollout
                    rollout = tx.get_rollout(rollout.rollout_id) or rollout
                    attempt = tx.get_attempt(rollout.rollout_id, attempt.attempt_id) or attempt
                tr.heartbeat(tx, rollout, attempt, now, fx)
            stored.extend(kept)
        return stored

    @staticmethod
    def _check_spans(spans: Sequence[Any]) -> None:
        for i, span in enumerate(spans):
            if not isinstance(span, Span):
                raise InvalidRequestError(f"spans[{i}] must be a Span, got {type(span).__name__}")
            check_span(span)

    async def add_span(self, span: Span) -> Optional[Span]:
        batch = [span]
        self._check_spans(batch)
        stored = await self._run(lambda tx, fx: self._store_spans(tx, batch, fx), write=True)
        return stored[0] if stored else None

    async def add_many_spans(self, spans: Sequence[Span]) -> Sequence[Span]:
        batch = list(spans)
        self._check_spans(batch)
        if not batch:
            return []
        return await self._run(lambda tx, fx: self._store_spans(tx, batch, fx), write=True)

    async def add_otel_span(
        self, rollout_id: str, attempt_id: str, readable_span: Any, sequence_id: Optional[int] = None
    ) -> Optional[Span]:
        # converted before the transaction, off the write lock
        span = Span.from_opentelemetry(readable_span, rollout_id, attempt_id, sequence_id or 0)
        if sequence_id is not None:
            batch = [span]
            self._check_spans(batch)
            stored = await self._run(lambda tx, fx: self._store_spans(tx, batch, fx), write=True)
            return stored[0] if stored else None
        check_span(span)  # a Span for sure: only its parts are checked
        return await self._add_next(span)

    async def add_span_with_next_sequence_id(self, span: Span) -> Optional[Span]:
        """Store ``span`` under the next sequence id of its rollout, allocated in the same transaction (what
        ``add_otel_span`` does without a sequence id). ``span`` is the caller's to give: its ``sequence_id`` is set
        in place. None when a span with the same ids is already stored."""
        self._check_spans([span])
        return await self._add_next(span)

    def _store_next(
        self, tx: StorageTransaction, span: Span, rollout_id: str, attempt_id: str, fx: tr.Effects
    ) -> Optional[Span]:
        """The transaction of ``add_span_with_next_sequence_id`` (``rollout_id`` and ``attempt_id``: the span's, read
        before the transaction): check the rollout and attempt, give the span the rollout's next sequence id, insert
        it and heartbeat."""
        rollout, attempt = _span_target(tx, rollout_id, attempt_id)
        span.sequence_id = tx.sequence_next(rollout_id, 1)
        if not tx.insert_spans([span])[0]:
            logger.error(
                "Duplicated span added: span %s of rollout %s attempt %s is already stored",
                span.span_id,
                span.rollout_id,
                span.attempt_id,
            )
            return None
        tr.heartbeat(tx, rollout, attempt, self._clock(), fx)
        return span

    def _add_next(self, span: Span) -> Awaitable[Optional[Span]]:
        """``add_span_with_next_sequence_id`` of a checked span (the transaction's awaitable itself: no coroutine of
        its own on the path of every span)."""
        rollout_id, attempt_id = span.rollout_id, span.attempt_id
        return self._run(lambda tx, fx: self._store_next(tx, span, rollout_id, attempt_id, fx), write=True)

    async def get_next_span_sequence_id(self, rollout_id: str, attempt_id: str) -> int:
        return await self._run(lambda tx, fx: tx.sequence_next(rollout_id, 1), write=True)

    async def get_many_span_sequence_ids(self, rollout_attempt_ids: Sequence[Tuple[str, str]]) -> Sequence[int]:
        pairs = list(rollout_attempt_ids)

        def op(tx: StorageTransaction, fx: tr.Effects) -> List[int]:
            counts: Dict[str, int] = {}
            for rollout_id, _ in pairs:
                counts[rollout_id] = counts.get(rollout_id, 0) + 1
            cursor = {rollout_id: tx.sequence_next(rollout_id, n) for rollout_id, n in counts.items()}
            out = []
            for rollout_id, _ in pairs:
                out.append(cursor[rollout_id])
                cursor[rollout_id] += 1
            return out

        if not pairs:
            return []
        return await self._run(op, write=True)

    async def query_spans(
        self,
        rollout_id: str,
        attempt_id: Optional[str] = None,
        *,
        trace_id: Optional[str] = None,
        trace_id_contains: Optional[str] = None,
        span_id: Optional[str] = None,
        span_id_contains: Optional[str] = None,
        parent_id: Optional[str] = None,
        parent_id_contains: Optional[str] = None,
        name: Optional[str] = None,
        name_contains: Optional[str] = None,
        filter_logic: FilterLogic = "and",
        limit: int = -1,
        offset: int = 0,
        sort_by: Optional[str] = "sequence_id",
        sort_order: SortOrder = "asc",
    ) -> PaginatedResult[Span]:
        filters: Dict[str, Any] = {
            "trace_id": {"exact": trace_id, "contains": trace_id_contains},
            "span_id": {"exact": span_id, "contains": span_id_contains},
            "parent_id": {"exact": parent_id, "contains": parent_id_contains},
            "name": {"exact": name, "contains": name_contains},
            "_aggregate": check_logic(filter_logic),
        }

        def op(tx: StorageTransaction, fx: tr.Effects) -> PaginatedResult[Span]:
            scope = attempt_id
            if attempt_id == "latest":
                latest = tx.get_latest_attempts([rollout_id]).get(rollout_id)
                if latest is None:
                    return run_query([], model=Span, sort_by=sort_by, sort_order=sort_order, limit=limit, offset=offset)
                scope = latest.attempt_id
            conditions = [Condition("rollout_id", "exact", rollout_id)]
            if scope is not None:
                conditions.append(Condition("attempt_id", "exact", scope))
            return select(
                tx,
                "spans",
                lambda: tx.get_spans(rollout_id, scope),
                model=Span,
                scope=conditions,
                filters=filters,
                sort_by=sort_by,
                sort_order=sort_order,
                limit=limit,
                offset=offset,
            )

        return await self._run(op, write=False, scan=True)

    # -- resources ------------------------------------------------------------------------------------------------

    @staticmethod
    def _check_resources(resources: Any) -> Dict[str, Any]:
        if not isinstance(resources, Mapping):
            raise InvalidRequestError(
                f"resources must be a mapping of names to resources, got {type(resources).__name__}"
            )
        named = dict(resources)
        check_value(named, "the resources")
        return named

    async def add_resources(self, resources: NamedResources) -> ResourcesUpdate:
        named = self._check_resources(resources)

        def op(tx: StorageTransaction, fx: tr.Effects) -> ResourcesUpdate:
            now = self._clock()
            update = ResourcesUpdate(
                resources_id=tr.new_resources_id(), create_time=now, update_time=now, version=1, resources=named
            )
            tx.put_resources(update)
            return update

        return await self._run(op, write=True)

    async def update_resources(self, resources_id: str, resources: NamedResources) -> ResourcesUpdate:
        named = self._check_resources(resources)

        def op(tx: StorageTransaction, fx: tr.Effects) -> ResourcesUpdate:
            now = self._clock()
            current = tx.get_resources(resources_id)
            if current is None:
                update = ResourcesUpdate(
                    resources_id=resources_id, create_time=now, update_time=now, version=1, resources=named
                )
            else:
                update = tr.evolve(current, resources=named, update_time=now, version=current.version + 1)
            tx.put_resources(update)
            return update

        return await self._run(op, write=True, scan=True)

    async def get_resources_by_id(self, resources_id: str) -> Optional[ResourcesUpdate]:
        return await self._run(lambda tx, fx: tx.get_resources(resources_id), write=False)

    async def get_latest_resources(self) -> Optional[ResourcesUpdate]:
        return await self._run(lambda tx, fx: tx.get_latest_resources(), write=False)

    async def query_resources(
        self,
        *,
        resources_id: Optional[str] = None,
        resources_id_contains: Optional[str] = None,
        sort_by: Optional[str] = None,
        sort_order: SortOrder = "asc",
        limit: int = -1,
        offset: int = 0,
    ) -> PaginatedResult[ResourcesUpdate]:
        filters = {"resources_id": {"exact": resources_id, "contains": resources_id_contains}}
        return await self._run(
            lambda tx, fx: select(
                tx,
                "resources",
                tx.iter_resources,
                model=ResourcesUpdate,
                filters=filters,
                sort_by=sort_by,
                sort_order=sort_order,
                limit=limit,
                offset=offset,
            ),
            write=False,
        )

    # -- workers --------------------------------------------------------------------------------------------------

    async def query_workers(
        self,
        *,
        status_in: Optional[Sequence[WorkerStatus]] = None,
        worker_id_contains: Optional[str] = None,
        filter_logic: FilterLogic = "and",
        sort_by: Optional[str] = None,
        sort_order: SortOrder = "asc",
        limit: int = -1,
        offset: int = 0,
    ) -> PaginatedResult[Worker]:
        filters: Dict[str, Any] = {
            "status": {"within": status_in},
            "worker_id": {"contains": worker_id_contains},
            "_aggregate": check_logic(filter_logic),
        }
        return await self._run(
            lambda tx, fx: select(
                tx,
                "workers",
                tx.iter_workers,
                model=Worker,
                filters=filters,
                sort_by=sort_by,
                sort_order=sort_order,
                limit=limit,
                offset=offset,
            ),
            write=False,
            scan=True,
        )

    async def get_worker_by_id(self, worker_id: str) -> Optional[Worker]:
        return await self._run(lambda tx, fx: tx.get_worker(worker_id), write=False)

    async def update_worker(self, worker_id: str, heartbeat_stats: Dict[str, Any] | Unset = UNSET) -> Worker:
        changes: Dict[str, Any] = {}
        if heartbeat_stats is not UNSET:
            if not isinstance(heartbeat_stats, Mapping):
                raise TypeError(f"heartbeat_stats must be a mapping, got {type(heartbeat_stats).__name__}")
            changes["heartbeat_stats"] = dict(heartbeat_stats)
            check_value(changes["heartbeat_stats"], "heartbeat_stats")

        def op(tx: StorageTransaction, fx: tr.Effects) -> Worker:
            worker = tx.get_worker(worker_id) or Worker(worker_id=worker_id)
            updated = tr.evolve(worker, last_heartbeat_time=self._clock(), **changes)
            tx.put_worker(updated)
            return updated

        return await self._run(op, write=True)
