"""Rollouts, attempts, workers and the other records the store keeps.

Field names, defaults and status values match upstream Agent Lightning v0.3 so that JSON produced by either side
reads on the other.
"""

from __future__ import annotations

from typing import Any, Dict, Generic, Iterator, List, Literal, Optional, Sequence, TypedDict, TypeVar, Union, overload

import attrs

from agentlightning._modelcompat import ModelCompat

__all__ = [
    "RolloutStatus",
    "AttemptStatus",
    "RolloutMode",
    "WorkerStatus",
    "StatusCode",
    "ROLLOUT_STATUSES",
    "ATTEMPT_STATUSES",
    "ROLLOUT_MODES",
    "WORKER_STATUSES",
    "QUEUING_STATUSES",
    "RUNNING_STATUSES",
    "FINISHED_STATUSES",
    "is_queuing",
    "is_running",
    "is_finished",
    "TaskInput",
    "Triplet",
    "RolloutConfig",
    "Rollout",
    "Attempt",
    "AttemptedRollout",
    "EnqueueRolloutRequest",
    "Worker",
    "PaginatedResult",
    "FilterField",
    "FilterOptions",
    "SortOptions",
    "Dataset",
]

RolloutStatus = Literal["queuing", "preparing", "running", "failed", "succeeded", "cancelled", "requeuing"]
AttemptStatus = Literal["preparing", "running", "failed", "succeeded", "unresponsive", "timeout"]
RolloutMode = Literal["train", "val", "test"]
WorkerStatus = Literal["idle", "busy", "unknown"]
StatusCode = Literal["UNSET", "OK", "ERROR"]

ROLLOUT_STATUSES: tuple[str, ...] = ("queuing", "preparing", "running", "failed", "succeeded", "cancelled", "requeuing")
ATTEMPT_STATUSES: tuple[str, ...] = ("preparing", "running", "failed", "succeeded", "unresponsive", "timeout")
ROLLOUT_MODES: tuple[str, ...] = ("train", "val", "test")
WORKER_STATUSES: tuple[str, ...] = ("idle", "busy", "unknown")

QUEUING_STATUSES = frozenset({"queuing", "requeuing"})
RUNNING_STATUSES = frozenset({"preparing", "running"})
FINISHED_STATUSES = frozenset({"failed", "succeeded", "cancelled"})

TaskInput = Any
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


def _one_of(allowed: Sequence[str], *, optional: bool = False) -> Any:
    """An attrs validator that accepts only ``allowed`` values and names the field when it refuses one."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if value not in allowed:
            raise ValueError(
                f"{type(instance).__name__}.{attribute.name}: {value!r} is not one of {', '.join(allowed)}"
            )

    return check


def _status_list(allowed: Sequence[str]) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        for item in value:
            _one_of(allowed)(instance, attribute, item)

    return check


def is_queuing(rollout: Rollout) -> bool:
    """Whether the rollout waits in the queue (``queuing`` or ``requeuing``)."""
    return rollout.status in QUEUING_STATUSES


def is_running(rollout: Rollout) -> bool:
    """Whether the rollout has an attempt in progress (``preparing`` or ``running``)."""
    return rollout.status in RUNNING_STATUSES


def is_finished(rollout: Rollout) -> bool:
    """Whether the rollout reached a final status (``failed``, ``succeeded`` or ``cancelled``)."""
    return rollout.status in FINISHED_STATUSES


@attrs.define(kw_only=True)
class Triplet(ModelCompat):
    """One LLM call turned into training data: what was asked, what came back, and its reward."""

    prompt: Any
    response: Any
    reward: Optional[float] = None
    metadata: Dict[str, Any] = attrs.field(factory=dict)


@attrs.define(kw_only=True)
class RolloutConfig(ModelCompat):
    """How a rollout is retried and when its attempts count as timed out or unresponsive."""

    timeout_seconds: Optional[float] = None
    unresponsive_seconds: Optional[float] = None
    max_attempts: int = attrs.field(default=1)
    retry_condition: List[AttemptStatus] = attrs.field(factory=list, validator=_status_list(ATTEMPT_STATUSES))

    @max_attempts.validator
    def _check_max_attempts(self, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"RolloutConfig.max_attempts must be an integer >= 1, got {value!r}")


@attrs.define(kw_only=True)
class Rollout(ModelCompat):
    """A task handed to the agent, with its current status."""

    rollout_id: str
    input: TaskInput
    start_time: float
    end_time: Optional[float] = None
    mode: Optional[RolloutMode] = attrs.field(default=None, validator=_one_of(ROLLOUT_MODES, optional=True))
    resources_id: Optional[str] = None
    status: RolloutStatus = attrs.field(default="queuing", validator=_one_of(ROLLOUT_STATUSES))
    config: RolloutConfig = attrs.field(factory=RolloutConfig)
    metadata: Optional[Dict[str, Any]] = None


@attrs.define(kw_only=True)
class Attempt(ModelCompat):
    """One try at running a rollout, by one worker."""

    rollout_id: str
    attempt_id: str
    sequence_id: int
    start_time: float
    end_time: Optional[float] = None
    status: AttemptStatus = attrs.field(default="preparing", validator=_one_of(ATTEMPT_STATUSES))
    worker_id: Optional[str] = None
    last_heartbeat_time: Optional[float] = None
    metadata: Optional[Dict[str, Any]] = None


@attrs.define(kw_only=True)
class AttemptedRollout(Rollout):
    """A rollout together with its latest attempt. On the wire: the rollout's JSON plus ``"attempt"``."""

    attempt: Attempt

    def __attrs_post_init__(self) -> None:
        if self.attempt.rollout_id != self.rollout_id:
            raise ValueError(
                "AttemptedRollout.attempt: Inconsistent rollout_id between Rollout and Attempt "
                f"({self.rollout_id!r} != {self.attempt.rollout_id!r})"
            )

    @classmethod
    def of(cls, rollout: Rollout, attempt: Attempt) -> AttemptedRollout:
        """Join a plain rollout with an attempt of it."""
        if cls is AttemptedRollout and not attrs.validators.get_disabled():
            return (_JOIN[0] if _JOIN else _joiner())(rollout, attempt)
        fields = {a.name: getattr(rollout, a.name) for a in attrs.fields(Rollout)}
        return cls(**fields, attempt=attempt)

    def as_rollout(self) -> Rollout:
        """The rollout alone, without its attempt."""
        return Rollout(**{a.name: getattr(self, a.name) for a in attrs.fields(Rollout)})


_JOIN: List[Any] = []
"""``join(rollout, attempt)``: ``AttemptedRollout(**rollout's fields, attempt=attempt)`` with the fields passed
positionally (validators and the consistency check run as in ``__init__``); generated on first use."""


def _joiner() -> Any:
    from .codegen import compile_function, positional_builder

    names = [a.name for a in attrs.fields(Rollout)]
    if [a.name for a in attrs.fields(AttemptedRollout)] != [*names, "attempt"]:  # pragma: no cover - a new field
        join: Any = lambda rollout, attempt: AttemptedRollout(  # noqa: E731
            **{name: getattr(rollout, name) for name in names}, attempt=attempt
        )
    else:
        source = f"def join(r, attempt):\n    return _build({', '.join(f'r.{name}' for name in names)}, attempt)\n"
        namespace = {"_build": positional_builder(AttemptedRollout, True, True)}
        join = compile_function(source, "join", namespace, "AttemptedRollout.of")
    _JOIN.append(join)
    return join


@attrs.define(kw_only=True)
class EnqueueRolloutRequest(ModelCompat):
    """One item of a batch enqueue."""

    input: TaskInput
    mode: Optional[RolloutMode] = attrs.field(default=None, validator=_one_of(ROLLOUT_MODES, optional=True))
    resources_id: Optional[str] = None
    config: Optional[RolloutConfig] = None
    metadata: Optional[Dict[str, Any]] = None


@attrs.define(kw_only=True)
class Worker(ModelCompat):
    """What the store knows of a runner worker; derived from its attempts and heartbeats."""

    worker_id: str
    status: WorkerStatus = attrs.field(default="unknown", validator=_one_of(WORKER_STATUSES))
    heartbeat_stats: Optional[Dict[str, Any]] = None
    last_heartbeat_time: Optional[float] = None
    last_dequeue_time: Optional[float] = None
    last_busy_time: Optional[float] = None
    last_idle_time: Optional[float] = None
    current_rollout_id: Optional[str] = None
    current_attempt_id: Optional[str] = None


@attrs.define(kw_only=True)
class PaginatedResult(Sequence[T], Generic[T]):
    """One page of a query; behaves as the sequence of its items. ``total`` counts matches before paging."""

    items: Sequence[T]
    limit: int
    offset: int
    total: int

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: Union[int, slice]) -> Union[T, Sequence[T]]:
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __repr__(self) -> str:
        """Upstream's form: the slice served (``offset:offset+limit``) and the first item."""
        end = "" if self.limit == -1 else str(self.offset + self.limit)
        first = repr(self.items[0]) if self.items else "empty"
        shown = f"[{first}, ...]" if len(self.items) > 1 else first
        return f"<PaginatedResult ({self.offset}:{end} of {self.total}) {shown}>"


class FilterField(TypedDict, total=False):
    """Conditions on one field: ``exact`` equality, ``within`` a collection, ``contains`` a substring or element."""

    exact: Any
    within: Sequence[Any]
    contains: Any


FilterOptions = Dict[str, Any]
"""Field name -> FilterField, plus the reserved keys ``_aggregate`` ("and" | "or") and ``_must``."""


class SortOptions(TypedDict):
    name: str
    order: Literal["asc", "desc"]


class Dataset(Generic[T_co]):
    """Anything indexable with a length (a list qualifies); used only for type hints."""

    def __getitem__(self, index: int) -> T_co:  # pragma: no cover - protocol
        raise NotImplementedError

    def __len__(self) -> int:  # pragma: no cover - protocol
        raise NotImplementedError
