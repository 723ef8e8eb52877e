"""Status transitions of rollouts, attempts and workers, as plain functions over a :class:`StorageTransaction`.

The state machine is upstream v0.3's with the deliberate changes listed in
``docs/store.md``. Every function here runs inside one transaction; what must happen after the commit (waking
``wait_for_rollouts`` waiters) is collected in an :class:`Effects`.
"""

from __future__ import annotations

import functools
import inspect
import secrets
import types
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple, TypeVar

import attrs

from agentlightning.types.core import (
    ATTEMPT_STATUSES,
    FINISHED_STATUSES,
    QUEUING_STATUSES,
    ROLLOUT_STATUSES,
    RUNNING_STATUSES,
    Attempt,
    Rollout,
    RolloutConfig,
    Worker,
)

from .backend import StorageTransaction
from .errors import InvalidRequestError

__all__ = [
    "Effects",
    "evolve",
    "new_rollout_id",
    "new_attempt_id",
    "new_resources_id",
    "check_rollout_status",
    "check_attempt_status",
    "rollout_status_from_attempt",
    "write_rollout",
    "new_attempt",
    "write_attempt",
    "heartbeat",
    "heartbeat_moves_time_only",
    "with_heartbeat",
    "sync_worker",
    "mark_worker_idle",
    "unhealthy_status",
    "scan_unhealthy",
]

ENDING_ATTEMPT_STATUSES = frozenset({"failed", "succeeded"})
"""Attempt statuses that set ``end_time`` (timeout/unresponsive do not: such an attempt may still come back)."""

RETRYABLE_ATTEMPT_STATUSES = frozenset({"failed", "timeout", "unresponsive"})

PROMOTED_BY_SPAN = frozenset({"preparing", "queuing", "requeuing"})
"""Rollout statuses a span on the latest attempt turns into ``running`` (upstream misspelt ``queuing``)."""


T = TypeVar("T")


@attrs.frozen
class _EvolvePlan:
    """How :func:`evolve` copies instances of one class."""

    init_fields: Tuple[Tuple[str, str], ...]
    """(attribute name, ``__init__`` argument name) of the init fields."""
    copyable: bool
    """Whether a field-by-field copy is a whole instance (every field is an init field, no init hooks)."""
    settable: FrozenSet[str]
    """Fields a copy may set directly: no converter runs on them (a validator may: see ``validators``), and the class
    has nothing else (no ``__attrs_pre_init__``/``__attrs_post_init__``, no non-init fields) that ``__init__`` would
    recompute. Empty when copying is unsafe."""
    validators: Dict[str, Tuple[Any, Any]]
    """``name: (attribute, validator)`` of the settable fields that have a validator: run on a changed value, as
    ``__init__`` would."""
    copy: Callable[[Any, Dict[str, Any]], Any]
    """``copy(inst, changes)``: a new instance with ``inst``'s fields, then ``changes`` set, every field set without
    running validators (straight-line code generated for the class)."""


_PLANS: Dict[type, _EvolvePlan] = {}
_new = object.__new__
_set = object.__setattr__


def _set_named(name: str, obj: Any, value: Any) -> None:
    _set(obj, name, value)


def _copier(
    cls: type,
    names: Sequence[str],
    replaced: Optional[str] = None,
    changed: Optional[Tuple[str, ...]] = None,
    validators: Optional[Dict[str, Tuple[Any, Any]]] = None,
) -> Callable[..., Any]:
    """Generate ``copy(inst, changes)`` for ``cls``: one line per field instead of a loop over field names (the
    names are attrs field names, hence identifiers), each set through the field's slot when it has one (no generic
    attribute lookup, no ``__setattr__`` hook), else with ``object.__setattr__``.

    With ``replaced``: ``copy(inst, value)``, the copy with that one field set to ``value`` (no dict of changes).
    With ``changed`` (names of settable fields): ``copy(inst, changes)`` for a ``changes`` dict with exactly these
    keys, each read straight into its field, then the ``validators`` (``name: (attribute, validator)``) of the changed
    fields run on their new values (unless attrs' validators are disabled), as ``__init__`` would run them."""
    setters: Dict[str, Callable[[Any, Any], None]] = {}
    namespace: Dict[str, Any] = {
        "_new": _new,
        "_set": _set,
        "cls": cls,
        "_setters": setters,
        "_disabled": attrs.validators.get_disabled,
    }
    lines = []
    for i, name in enumerate(names):
        if name == replaced:
            source = "value"
        elif changed is not None and name in changed:
            source = f"changes[{name!r}]"
        else:
            source = f"inst.{name}"
        slot = inspect.getattr_static(cls, name, None)
        if type(slot) is types.MemberDescriptorType:
            setters[name] = namespace[f"_slot{i}"] = slot.__set__
            lines.append(f"    _slot{i}(new, {source})\n")
        else:
            setters[name] = functools.partial(_set_named, name)
            lines.append(f"    _set(new, {name!r}, {source})\n")
    if changed is not None:
        checks = []
        for i, name in enumerate(changed):
            if validators and name in validators:
                namespace[f"_a{i}"], namespace[f"_v{i}"] = validators[name]
                checks.append(f"        _v{i}(new, _a{i}, new.{name})\n")
        tail = "    if not _disabled():\n" + "".join(checks) if checks else ""
    elif replaced is None:
        tail = "    for name, value in changes.items():\n        _setters[name](new, value)\n"
    else:
        tail = ""
    source = (
        f"def copy(inst, {'value' if replaced is not None else 'changes'}):\n"
        "    new = _new(cls)\n"
        f"{''.join(lines)}"
        f"{tail}"
        "    return new\n"
    )
    exec(compile(source, f"<evolve copier for {cls.__qualname__}>", "exec"), namespace)  # noqa: S102 - our own source
    return namespace["copy"]


def _plan(cls: type) -> _EvolvePlan:
    fields = attrs.fields(cls)
    copyable = all(a.init for a in fields) and not any(
        hasattr(cls, hook) for hook in ("__attrs_pre_init__", "__attrs_post_init__")
    )
    init_fields = tuple((a.name, a.alias) for a in fields if a.init)
    settable = [a for a in fields if copyable and a.converter is None and a.alias == a.name]
    return _EvolvePlan(
        init_fields=init_fields,
        copyable=copyable,
        settable=frozenset(a.name for a in settable),
        validators={a.name: (a, a.validator) for a in settable if a.validator is not None},
        copy=_copier(cls, [name for name, _ in init_fields]),
    )


# Kept because it pays (tests/benchmarks/span_codec.py, best of 400 interleaved batches on a busy 2-core machine): a
# span's sequence id changed in 1.9 us against attrs.evolve's 3.3 us, a rollout's status in 1.8 us against 3.2 us.
def evolve(inst: T, /, **changes: Any) -> T:
    """``attrs.evolve`` for the store's hot paths, with the class's fields looked up once per class.

    When no changed field has a converter, the copy is made slot by slot and the validators of the changed fields run
    on the copy, as ``__init__`` would run them (the other fields were validated when ``inst`` was built or last set,
    and are copied as they are, as ``evolve`` would); such a copy is generated once per class and set of changed
    fields (the store's calls change a few fixed sets). Otherwise the new instance goes through ``__init__``.
    """
    cls = type(inst)
    key: Tuple[Any, ...] = (cls, *changes)
    copy = _CHANGE_COPIERS.get(key)
    if copy is not None:
        return copy(inst, changes)
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _plan(cls)
    if plan.copyable and plan.settable.issuperset(changes):
        if len(_CHANGE_COPIERS) < _CHANGE_COPIERS_SIZE:  # dict writes are atomic: threads at worst generate twice
            copy = _CHANGE_COPIERS[key] = _copier(
                cls, [name for name, _ in plan.init_fields], changed=tuple(changes), validators=plan.validators
            )
            return copy(inst, changes)
        new = plan.copy(inst, changes)
        validators = plan.validators
        if validators and not attrs.validators.get_disabled():
            for name, value in changes.items():
                checked = validators.get(name)
                if checked is not None:
                    checked[1](new, checked[0], value)
        return new
    for name, alias in plan.init_fields:
        if alias not in changes:
            changes[alias] = getattr(inst, name)
    return cls(**changes)


_CHANGE_COPIERS: Dict[Tuple[Any, ...], Callable[[Any, Dict[str, Any]], Any]] = {}
"""``copy(inst, changes)`` per (class, names of the changed fields, in the order given), for :func:`evolve`."""

_CHANGE_COPIERS_SIZE = 512
"""At most this many copiers are generated; beyond, :func:`evolve` copies through the class's generic copier."""


_HEARTBEAT_COPIERS: Dict[type, Callable[[Any, Any], Any]] = {}
"""``copy(attempt, last_heartbeat_time)`` per attempt class whose ``last_heartbeat_time`` no validator or converter
watches."""


def with_heartbeat(attempt: Attempt, now: float) -> Attempt:
    """``evolve(attempt, last_heartbeat_time=now)`` through a copier generated for that one field when no validator
    or converter watches it (a span's heartbeat, once per span)."""
    cls = type(attempt)
    copy = _HEARTBEAT_COPIERS.get(cls)
    if copy is not None:
        return copy(attempt, now)
    plan = _PLANS.get(cls)
    if plan is not None and "last_heartbeat_time" in plan.settable and "last_heartbeat_time" not in plan.validators:
        copy = _HEARTBEAT_COPIERS[cls] = _copier(cls, [name for name, _ in plan.init_fields], "last_heartbeat_time")
        return copy(attempt, now)
    return evolve(attempt, last_heartbeat_time=now)  # also makes the plan for the next call


@attrs.define
class Effects:
    """What a transaction did that matters after it commits."""

    finished: List[str] = attrs.field(factory=list)
    """Rollouts whose status was written to failed/succeeded/cancelled."""


def new_rollout_id() -> str:
    return "ro-" + secrets.token_hex(6)


def new_attempt_id() -> str:
    return "at-" + secrets.token_hex(4)


def new_resources_id() -> str:
    return "rs-" + secrets.token_hex(6)


def check_rollout_status(status: Any) -> str:
    if status not in ROLLOUT_STATUSES:
        raise InvalidRequestError(f"Invalid rollout status {status!r}; expected one of {', '.join(ROLLOUT_STATUSES)}")
    return str(status)


def check_attempt_status(status: Any) -> str:
    if status not in ATTEMPT_STATUSES:
        raise InvalidRequestError(f"Invalid attempt status {status!r}; expected one of {', '.join(ATTEMPT_STATUSES)}")
    return str(status)


def rollout_status_from_attempt(attempt: Attempt, config: RolloutConfig) -> str:
    """The status a rollout takes from its latest attempt: retryable failures requeue while attempts remain."""
    status = attempt.status
    if status in RUNNING_STATUSES or status == "succeeded":
        return status
    if status in RETRYABLE_ATTEMPT_STATUSES:
        if status in config.retry_condition and attempt.sequence_id < config.max_attempts:
            return "requeuing"
        return "failed"
    raise InvalidRequestError(f"Invalid attempt status: {status!r}")


def write_rollout(
    tx: StorageTransaction, rollout: Rollout, changes: Dict[str, Any], now: float, effects: Effects
) -> Rollout:
    """Write ``changes``; a written final status sets ``end_time``, a written queuing status (re)queues once."""
    status = changes.get("status")
    if status in FINISHED_STATUSES:
        changes = {**changes, "end_time": now}
    updated = evolve(rollout, **changes) if changes else rollout
    tx.update_rollout(updated)
    if status in QUEUING_STATUSES and not tx.queue_contains(rollout.rollout_id):
        tx.queue_push([rollout.rollout_id])
    if status in FINISHED_STATUSES:
        effects.finished.append(rollout.rollout_id)
    return updated


def new_attempt(tx: StorageTransaction, rollout_id: str, worker_id: Optional[str], now: float) -> Attempt:
    """Insert the next attempt (``preparing``) of a rollout."""
    latest = tx.get_latest_attempts([rollout_id]).get(rollout_id)
    attempt = Attempt(
        rollout_id=rollout_id,
        attempt_id=new_attempt_id(),
        sequence_id=(latest.sequence_id if latest is not None else 0) + 1,
        start_time=now,
        status="preparing",
        worker_id=worker_id,
    )
    tx.insert_attempt(attempt)
    return attempt


def write_attempt(
    tx: StorageTransaction,
    rollout: Rollout,
    attempt: Attempt,
    changes: Dict[str, Any],
    now: float,
    effects: Effects,
) -> Attempt:
    """Write attempt fields; a new status of the latest attempt propagates to the rollout."""
    status = changes.get("status")
    if status in ENDING_ATTEMPT_STATUSES:
        changes = {**changes, "end_time": now}
    updated = evolve(attempt, **changes)
    tx.update_attempt(updated)
    if status is not None:
        latest = tx.get_latest_attempts([rollout.rollout_id]).get(rollout.rollout_id)
        if latest is not None and latest.attempt_id == attempt.attempt_id:
            target = rollout_status_from_attempt(updated, rollout.config)
            if target != rollout.status:
                write_rollout(tx, rollout, {"status": target}, now, effects)
    return updated


def heartbeat_moves_time_only(rollout: Rollout, attempt: Attempt) -> bool:
    """Whether :func:`heartbeat` on ``attempt`` (of ``rollout``) writes nothing but the attempt's
    ``last_heartbeat_time`` (through :func:`with_heartbeat`): no revival, no promotion of the rollout."""
    status = attempt.status
    return status not in _REVIVED_BY_SPAN and not (status == "running" and rollout.status in PROMOTED_BY_SPAN)


_REVIVED_BY_SPAN = ("preparing", "unresponsive")
"""Attempt statuses a span turns into ``running``."""


def heartbeat(tx: StorageTransaction, rollout: Rollout, attempt: Attempt, now: float, effects: Effects) -> None:
    """A span arrived for ``attempt``: record the heartbeat, revive it (preparing/unresponsive -> running), and
    promote its rollout to ``running`` when the attempt is the latest and now running."""
    status = attempt.status
    if status in _REVIVED_BY_SPAN:
        status = "running"
        tx.update_attempt(evolve(attempt, last_heartbeat_time=now, status=status))
    else:  # only the heartbeat time moves: a backend may store that more cheaply (see HeartbeatTransaction)
        record = getattr(tx, "record_heartbeat", None)
        (tx.update_attempt if record is None else record)(with_heartbeat(attempt, now))
    # only a live attempt carries its rollout along: a span for a timed-out or finished attempt records the
    # heartbeat but must not turn its requeuing rollout "running" with nobody working on it
    if status == "running" and rollout.status in PROMOTED_BY_SPAN:
        latest = tx.get_latest_attempts([rollout.rollout_id]).get(rollout.rollout_id)
        if latest is not None and latest.attempt_id == attempt.attempt_id:
            write_rollout(tx, rollout, {"status": "running"}, now, effects)


def sync_worker(
    tx: StorageTransaction, worker_id: str, attempt: Attempt, now: float, *, dequeued: bool = False
) -> None:
    """Derive a worker's status and assignment from the attempt it works on (heartbeat fields are kept)."""
    worker = tx.get_worker(worker_id) or Worker(worker_id=worker_id)
    changes: Dict[str, Any] = {}
    if attempt.status in ENDING_ATTEMPT_STATUSES:
        changes.update(status="idle", last_idle_time=now, current_rollout_id=None, current_attempt_id=None)
    elif attempt.status in ("timeout", "unresponsive"):
        changes.update(status="unknown", last_idle_time=now, current_rollout_id=None, current_attempt_id=None)
    else:
        changes.update(
            status="busy",
            last_busy_time=now,
            current_rollout_id=attempt.rollout_id,
            current_attempt_id=attempt.attempt_id,
        )
    if dequeued:
        changes["last_dequeue_time"] = now
    tx.put_worker(evolve(worker, **changes))


def mark_worker_idle(tx: StorageTransaction, worker_id: str, now: float) -> None:
    """An empty dequeue: the worker is idle (only ``last_dequeue_time`` moves when it already was)."""
    worker = tx.get_worker(worker_id) or Worker(worker_id=worker_id)
    if worker.status == "idle":
        tx.put_worker(evolve(worker, last_dequeue_time=now))
    else:
        tx.put_worker(evolve(worker, status="idle", last_idle_time=now, last_dequeue_time=now))


def unhealthy_status(attempt: Attempt, config: RolloutConfig, now: float) -> Optional[str]:
    """``timeout`` or ``unresponsive`` when the attempt overran its rollout's limits (timeout wins), else None."""
    if config.timeout_seconds is not None and now - attempt.start_time > config.timeout_seconds:
        return "timeout"
    if config.unresponsive_seconds is not None:
        since = attempt.last_heartbeat_time if attempt.last_heartbeat_time is not None else attempt.start_time
        if now - since > config.unresponsive_seconds:
            return "unresponsive"
    return None


def scan_unhealthy(tx: StorageTransaction, now: float, effects: Effects) -> int:
    """Mark the overdue latest attempts of preparing/running rollouts; returns how many were marked."""
    candidates = [
        r
        for r in tx.iter_rollouts(status_in=sorted(RUNNING_STATUSES))
        if r.status in RUNNING_STATUSES
        and (r.config.timeout_seconds is not None or r.config.unresponsive_seconds is not None)
    ]
    if not candidates:
        return 0
    latest = tx.get_latest_attempts([r.rollout_id for r in candidates])
    marked = 0
    for rollout in candidates:
        attempt = latest.get(rollout.rollout_id)
        if attempt is None or attempt.status not in RUNNING_STATUSES:
            continue
        status = unhealthy_status(attempt, rollout.config, now)
        if status is None:
            continue
        updated = write_attempt(tx, rollout, attempt, {"status": status}, now, effects)
        if updated.worker_id:
            sync_worker(tx, updated.worker_id, updated, now)
        marked += 1
    return marked
