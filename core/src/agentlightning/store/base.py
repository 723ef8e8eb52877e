"""The LightningStore contract: every runner, algorithm, proxy and server talks to the store through it.

Method names, parameters and semantics follow upstream Agent Lightning v0.3 (see ``docs/store.md`` for where we
deliberately differ). All methods are async and work under asyncio and trio.
"""

from __future__ import annotations

import abc
import enum
from typing import Any, Dict, Final, List, Literal, Optional, Sequence, Tuple, TypedDict, Union

from agentlightning.types.core import (
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

__all__ = [
    "LightningStore",
    "LightningStoreCapabilities",
    "LightningStoreStatistics",
    "UNSET",
    "Unset",
    "is_unset",
]


class Unset(enum.Enum):
    """The type of :data:`UNSET`, the "not given" marker of update methods (distinct from an explicit ``None``).

    Its one member lets a type checker tell "not given" from a value: ``status: RolloutStatus | Unset = UNSET``
    accepts only the statuses and ``UNSET``, and ``if status is not UNSET`` narrows to the statuses.
    """

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = Unset.UNSET


def is_unset(value: object) -> bool:
    return value is UNSET


class LightningStoreCapabilities(TypedDict, total=False):
    thread_safe: bool
    async_safe: bool
    zero_copy: bool
    """One logical copy of the data shared by every process that opens the store (SQLite, the HTTP client)."""
    otlp_traces: bool


class LightningStoreStatistics(TypedDict, total=False):
    name: str
    total_rollouts: int
    total_attempts: int
    total_spans: int
    total_resources: int
    total_workers: int
    uptime: float
    total_span_bytes: int
    evicted_rollouts: int
    evicted_spans: int
    memory_budget_bytes: int
    file_size_bytes: int


SortOrder = Literal["asc", "desc"]
FilterLogic = Literal["and", "or"]


# The async calls of the store contract, in the order below (wrappers and facades forward exactly these).
STORE_CALLS = [
    "start_rollout",
    "enqueue_rollout",
    "enqueue_many_rollouts",
    "dequeue_rollout",
    "dequeue_many_rollouts",
    "start_attempt",
    "query_rollouts",
    "get_rollout_by_id",
    "update_rollout",
    "wait_for_rollouts",
    "query_attempts",
    "get_latest_attempt",
    "update_attempt",
    "add_span",
    "add_many_spans",
    "add_otel_span",
    "get_next_span_sequence_id",
    "get_many_span_sequence_ids",
    "query_spans",
    "add_resources",
    "update_resources",
    "get_resources_by_id",
    "get_latest_resources",
    "query_resources",
    "query_workers",
    "get_worker_by_id",
    "update_worker",
]


class LightningStore(abc.ABC):  # noqa: B024 (a subclass implements what it supports; the rest raise)
    """The store of rollouts, attempts, spans, resources and workers.

    Use it as an async context manager, or call :meth:`close` when done.
    """

    @property
    def capabilities(self) -> LightningStoreCapabilities:
        return LightningStoreCapabilities(thread_safe=False, async_safe=False, zero_copy=False, otlp_traces=False)

    async def statistics(self) -> LightningStoreStatistics:
        return LightningStoreStatistics(name=type(self).__name__)

    def otlp_traces_endpoint(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} has no OTLP traces endpoint")

    def reopen_url(self) -> Optional[str]:
        """A URL that ``open_store`` resolves, in another process, to this same store; ``None`` when there is none.

        Stores whose capabilities say ``zero_copy`` return one so that runner processes open them directly.
        """
        return None

    async def close(self) -> None:
        """Release connections, threads and files. Safe to call twice."""

    async def __aenter__(self) -> LightningStore:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    # -- rollouts and the queue ----------------------------------------------------------------------------------

    async def start_rollout(
        self,
        input: TaskInput,
        mode: Optional[RolloutMode] = None,
        resources_id: Optional[str] = None,
        config: Optional[RolloutConfig] = None,
        metadata: Optional[Dict[str, Any]] = None,
        worker_id: Optional[str] = None,
    ) -> AttemptedRollout:
        """Create a rollout and its first attempt, both ``preparing``, without queuing it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement start_rollout()")

    async def enqueue_rollout(
        self,
        input: TaskInput,
        mode: Optional[RolloutMode] = None,
        resources_id: Optional[str] = None,
        config: Optional[RolloutConfig] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> Rollout:
        """Create a ``queuing`` rollout at the tail of the queue."""
        raise NotImplementedError(f"{type(self).__name__} does not implement enqueue_rollout()")

    async def enqueue_many_rollouts(self, rollouts: Sequence[EnqueueRolloutRequest]) -> Sequence[Rollout]:
        """Enqueue several rollouts in order, in one step."""
        raise NotImplementedError(f"{type(self).__name__} does not implement enqueue_many_rollouts()")

    async def dequeue_rollout(self, worker_id: Optional[str] = None) -> Optional[AttemptedRollout]:
        """Claim the rollout at the head of the queue with a new ``preparing`` attempt; None when the queue is empty."""
        raise NotImplementedError(f"{type(self).__name__} does not implement dequeue_rollout()")

    async def dequeue_many_rollouts(
        self, *, limit: int = 1, worker_id: Optional[str] = None
    ) -> Sequence[AttemptedRollout]:
        """Claim up to ``limit`` rollouts."""
        raise NotImplementedError(f"{type(self).__name__} does not implement dequeue_many_rollouts()")

    async def start_attempt(self, rollout_id: str, worker_id: Optional[str] = None) -> AttemptedRollout:
        """Add a new attempt to an existing rollout (whatever its status)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement start_attempt()")

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
        """Rollouts matching the filters; those with attempts come with their latest one.

        ``mode_in`` keeps the rollouts whose mode ("train", "val", "test" or ``None``) is among the given ones.
        ``start_time_from`` keeps those started at or after that Unix time, whatever ``filter_logic`` (it is ANDed
        with the other filters); with ``sort_by="start_time"`` it pages by key (see ``docs/store.md``).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement query_rollouts()")

    async def get_rollout_by_id(self, rollout_id: str) -> Optional[Union[Rollout, AttemptedRollout]]:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_rollout_by_id()")

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
        """Write the given fields (``None`` clears, :data:`UNSET` leaves alone)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement update_rollout()")

    async def wait_for_rollouts(self, *, rollout_ids: List[str], timeout: Optional[float] = None) -> List[Rollout]:
        """The rollouts among ``rollout_ids`` that are finished by the deadline, in input order."""
        raise NotImplementedError(f"{type(self).__name__} does not implement wait_for_rollouts()")

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
        raise NotImplementedError(f"{type(self).__name__} does not implement query_attempts()")

    async def get_latest_attempt(self, rollout_id: str) -> Optional[Attempt]:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_latest_attempt()")

    async def update_attempt(
        self,
        rollout_id: str,
        attempt_id: str,
        status: AttemptStatus | Unset = UNSET,
        worker_id: Optional[str] | Unset = UNSET,
        last_heartbeat_time: Optional[float] | Unset = UNSET,
        metadata: Optional[Dict[str, Any]] | Unset = UNSET,
    ) -> Attempt:
        """Write the given fields of an attempt (``"latest"`` names the latest); the rollout follows its latest."""
        raise NotImplementedError(f"{type(self).__name__} does not implement update_attempt()")

    # -- spans ----------------------------------------------------------------------------------------------------

    async def add_span(self, span: Span) -> Optional[Span]:
        """Store one span (a heartbeat for its attempt); None when a span with the same ids is already stored."""
        raise NotImplementedError(f"{type(self).__name__} does not implement add_span()")

    async def add_many_spans(self, spans: Sequence[Span]) -> Sequence[Span]:
        """Store several spans; returns those stored (duplicates left out)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement add_many_spans()")

    async def add_otel_span(
        self, rollout_id: str, attempt_id: str, readable_span: Any, sequence_id: Optional[int] = None
    ) -> Optional[Span]:
        """Convert and store an OpenTelemetry SDK span, allocating a sequence id when none is given."""
        raise NotImplementedError(f"{type(self).__name__} does not implement add_otel_span()")

    async def get_next_span_sequence_id(self, rollout_id: str, attempt_id: str) -> int:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_next_span_sequence_id()")

    async def get_many_span_sequence_ids(self, rollout_attempt_ids: Sequence[Tuple[str, str]]) -> Sequence[int]:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_many_span_sequence_ids()")

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
        raise NotImplementedError(f"{type(self).__name__} does not implement query_spans()")

    # -- resources ------------------------------------------------------------------------------------------------

    async def add_resources(self, resources: NamedResources) -> ResourcesUpdate:
        raise NotImplementedError(f"{type(self).__name__} does not implement add_resources()")

    async def update_resources(self, resources_id: str, resources: NamedResources) -> ResourcesUpdate:
        raise NotImplementedError(f"{type(self).__name__} does not implement update_resources()")

    async def get_resources_by_id(self, resources_id: str) -> Optional[ResourcesUpdate]:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_resources_by_id()")

    async def get_latest_resources(self) -> Optional[ResourcesUpdate]:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_latest_resources()")

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
        raise NotImplementedError(f"{type(self).__name__} does not implement query_resources()")

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
        raise NotImplementedError(f"{type(self).__name__} does not implement query_workers()")

    async def get_worker_by_id(self, worker_id: str) -> Optional[Worker]:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_worker_by_id()")

    async def update_worker(self, worker_id: str, heartbeat_stats: Dict[str, Any] | Unset = UNSET) -> Worker:
        """Record a heartbeat (and optionally its stats) for a worker, creating it if needed."""
        raise NotImplementedError(f"{type(self).__name__} does not implement update_worker()")
