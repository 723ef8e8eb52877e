"""A hypothesis state machine that checks any LightningStore against a small pure-Python model.

The machine drives random sequences of enqueue, start_rollout, dequeue, start_attempt, add_span, update_attempt,
update_rollout (including manual requeues), sequence-id allocation and resource updates, and after every step compares
the store with :class:`StoreModel`: statuses of rollouts and attempts, the queue order (through what dequeue returns),
attempt sequence ids, span sequence counters, span counts and resource versions.

With a clock (engine stores: the factory passes ``clock=`` on), rollouts also get timeout and unresponsive limits and
a rule moves the clock forward, so timeouts, unresponsive attempts and their retries are explored deterministically:
the store is made with a scan debounce no shorter than the smallest step of the clock, so it scans exactly once after
each move (in the rule's ``query_rollouts``), and the model applies the same scan there.

The store is async; every rule runs through one blocking portal (a private event loop in a thread), so the machine
works for any backend. Run it with :func:`run_store_state_machine`, or through :class:`StateMachineTests` /
:class:`EngineStateMachineTests`. ``AGL_STATEFUL_EXAMPLES`` (default 200), ``AGL_STATEFUL_STEPS`` (default 30) and
``AGL_STATEFUL_BACKENDS`` (default ``asyncio``; comma-separated) tune it.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Awaitable, Callable, ClassVar, Dict, List, Mapping, Optional, Set, Tuple

import anyio
import anyio.from_thread
import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from agentlightning.store.base import LightningStore
from agentlightning.store.errors import NotFoundError
from agentlightning.types.core import ATTEMPT_STATUSES, ROLLOUT_STATUSES, EnqueueRolloutRequest, RolloutConfig
from agentlightning.types.resources import PromptTemplate
from agentlightning.types.tracer import Span

from ._support import ManualClock, make_span

__all__ = [
    "StoreFactory",
    "StoreModel",
    "StoreStateMachine",
    "StateMachineTests",
    "EngineStateMachineTests",
    "run_store_state_machine",
    "stateful_settings",
    "stateful_backends",
]

StoreFactory = Callable[..., Awaitable[LightningStore]]

QUEUING = ("queuing", "requeuing")
FINISHED = ("failed", "succeeded", "cancelled")
RETRYABLE = ("failed", "timeout", "unresponsive")
RUNNING = ("preparing", "running")

LIMITS: Tuple[Tuple[Optional[float], Optional[float]], ...] = ((None, None), (3.0, None), (None, 2.0), (3.0, 2.0))
"""(timeout_seconds, unresponsive_seconds) a rollout gets when the machine has a clock."""

CLOCK_STEPS = (1.0, 2.0, 3.5, 10.0)
"""How far the clock rule moves the clock: onto the limits (``>`` is overdue, equal is not), past them, far past
them. The smallest step is the store's scan debounce."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def stateful_settings() -> settings:
    """Hypothesis settings of the store state machine, tuned by ``AGL_STATEFUL_EXAMPLES`` / ``AGL_STATEFUL_STEPS``."""
    return settings(
        max_examples=_env_int("AGL_STATEFUL_EXAMPLES", 200),
        stateful_step_count=_env_int("AGL_STATEFUL_STEPS", 30),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def stateful_backends() -> List[str]:
    """The anyio backends the state machine runs on (``AGL_STATEFUL_BACKENDS``, default ``asyncio``)."""
    raw = os.environ.get("AGL_STATEFUL_BACKENDS", "asyncio")
    return [b.strip() for b in raw.split(",") if b.strip()]


# -- the reference model --------------------------------------------------------------------------------------------


@attrs.define
class ModelAttempt:
    attempt_id: str
    sequence_id: int
    status: str = "preparing"
    start_time: float = 0.0
    heartbeat: Optional[float] = None


@attrs.define
class ModelRollout:
    rollout_id: str
    status: str
    max_attempts: int = 1
    retry_condition: Tuple[str, ...] = ()
    timeout_seconds: Optional[float] = None
    unresponsive_seconds: Optional[float] = None
    attempts: List[ModelAttempt] = attrs.field(factory=list)
    spans: int = 0

    @property
    def latest(self) -> Optional[ModelAttempt]:
        return self.attempts[-1] if self.attempts else None


@attrs.define
class StoreModel:
    """What the store should hold, by upstream v0.3's status rules, without timing."""

    rollouts: Dict[str, ModelRollout] = attrs.field(factory=dict)
    queue: List[str] = attrs.field(factory=list)
    span_counters: Dict[str, int] = attrs.field(factory=dict)
    span_keys: Set[Tuple[str, str, str]] = attrs.field(factory=set)
    resources: Dict[str, int] = attrs.field(factory=dict)
    latest_resources: Optional[str] = None
    now: float = 0.0

    def push(self, rollout_id: str) -> None:
        if rollout_id not in self.queue:
            self.queue.append(rollout_id)

    def set_rollout_status(self, rollout: ModelRollout, status: str) -> None:
        rollout.status = status
        if status in QUEUING:
            self.push(rollout.rollout_id)

    def new_attempt(self, rollout: ModelRollout, attempt_id: str) -> None:
        rollout.attempts.append(ModelAttempt(attempt_id, len(rollout.attempts) + 1, start_time=self.now))
        rollout.status = "preparing"

    def scan(self) -> None:
        """The engine's timeout scan at ``now``: the overdue latest attempts of preparing/running rollouts become
        ``timeout`` (past ``timeout_seconds`` since the start; this wins) or ``unresponsive`` (past
        ``unresponsive_seconds`` since the last span, or the start), in insertion order of the rollouts."""
        for rollout in self.rollouts.values():
            attempt = rollout.latest
            if rollout.status not in RUNNING or attempt is None or attempt.status not in RUNNING:
                continue
            if rollout.timeout_seconds is not None and self.now - attempt.start_time > rollout.timeout_seconds:
                self.update_attempt(rollout, attempt, "timeout")
            elif rollout.unresponsive_seconds is not None:
                since = attempt.heartbeat if attempt.heartbeat is not None else attempt.start_time
                if self.now - since > rollout.unresponsive_seconds:
                    self.update_attempt(rollout, attempt, "unresponsive")

    def pop_claimable(self) -> Optional[ModelRollout]:
        while self.queue:
            rollout = self.rollouts[self.queue.pop(0)]
            if rollout.status in QUEUING:
                return rollout
        return None

    @staticmethod
    def propagated(rollout: ModelRollout, attempt: ModelAttempt) -> str:
        if attempt.status in RETRYABLE:
            retry = attempt.status in rollout.retry_condition and attempt.sequence_id < rollout.max_attempts
            return "requeuing" if retry else "failed"
        return attempt.status

    def update_attempt(self, rollout: ModelRollout, attempt: ModelAttempt, status: str) -> None:
        attempt.status = status
        if attempt is rollout.latest:
            new = self.propagated(rollout, attempt)
            if new != rollout.status:
                self.set_rollout_status(rollout, new)

    def next_sequence(self, rollout_id: str) -> int:
        value = self.span_counters.get(rollout_id, 0) + 1
        self.span_counters[rollout_id] = value
        return value

    def raise_sequence(self, rollout_id: str, value: int) -> None:
        self.span_counters[rollout_id] = max(self.span_counters.get(rollout_id, 0), value)

    def heartbeat(self, rollout: ModelRollout, attempt: ModelAttempt) -> Set[str]:
        """Apply a span's heartbeat; returns the rollout statuses the store may show afterwards.

        Certain: a preparing/unresponsive attempt becomes running, and a latest running attempt promotes a preparing
        or requeuing rollout to running. Left open (backends differ, upstream had a typo there): whether a queuing
        rollout is promoted, and whether a latest attempt in a final status promotes its rollout.
        """
        attempt.heartbeat = self.now
        if attempt.status in ("preparing", "unresponsive"):
            attempt.status = "running"
        if attempt is not rollout.latest:
            return {rollout.status}
        if rollout.status in ("preparing", "requeuing"):
            return {"running"} if attempt.status == "running" else {rollout.status, "running"}
        if rollout.status == "queuing":
            return {"queuing", "running"}
        return {rollout.status}


# -- the machine ----------------------------------------------------------------------------------------------------


class StoreStateMachine(RuleBasedStateMachine):
    """Random store operations checked against :class:`StoreModel` (see the module docstring)."""

    rollouts = Bundle("rollouts")

    def __init__(
        self,
        store_factory: StoreFactory,
        portal: anyio.from_thread.BlockingPortal,
        options: Optional[Mapping[str, Any]] = None,
        clock: Optional[ManualClock] = None,
    ) -> None:
        super().__init__()
        self.portal = portal
        self.clock = clock
        options = dict(options or {})
        if clock is not None:
            options.update(clock=clock, scan_debounce_seconds=min(CLOCK_STEPS), watchdog_interval=None)
        self.store: LightningStore = portal.call(functools.partial(store_factory, **options))
        self.model = StoreModel(now=clock() if clock is not None else 0.0)
        self._checked: Dict[str, Tuple[Any, ...]] = {}
        self.last_span: Optional[Span] = None

    def call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        return self.portal.call(functools.partial(fn, *args, **kwargs))

    def teardown(self) -> None:
        self.portal.call(self.store.close)

    # -- creating rollouts -----------------------------------------------------------------------------------------

    def _add_rollout(self, rollout_id: str, status: str, config: RolloutConfig) -> None:
        assert rollout_id not in self.model.rollouts, f"store reused rollout id {rollout_id}"
        self.model.rollouts[rollout_id] = ModelRollout(
            rollout_id,
            status,
            config.max_attempts,
            tuple(config.retry_condition),
            config.timeout_seconds,
            config.unresponsive_seconds,
        )

    def _config(self, max_attempts: int, retry: List[str], limits: int) -> RolloutConfig:
        """Limits only with a clock: without one, real time would make timeouts nondeterministic."""
        timeout, unresponsive = LIMITS[limits] if self.clock is not None else (None, None)
        return RolloutConfig(
            max_attempts=max_attempts,
            retry_condition=retry,  # type: ignore[arg-type]
            timeout_seconds=timeout,
            unresponsive_seconds=unresponsive,
        )

    @rule(
        target=rollouts,
        max_attempts=st.integers(1, 3),
        retry=st.lists(st.sampled_from(RETRYABLE), unique=True, max_size=3),
        limits=st.integers(0, len(LIMITS) - 1),
    )
    def enqueue(self, max_attempts: int, retry: List[str], limits: int) -> str:
        config = self._config(max_attempts, retry, limits)
        rollout = self.call(self.store.enqueue_rollout, {"n": len(self.model.rollouts)}, config=config)
        assert rollout.status == "queuing"
        self._add_rollout(rollout.rollout_id, "queuing", config)
        self.model.push(rollout.rollout_id)
        return str(rollout.rollout_id)

    @rule(target=rollouts, count=st.integers(1, 3), max_attempts=st.integers(1, 3))
    def enqueue_many(self, count: int, max_attempts: int) -> Any:
        config = RolloutConfig(max_attempts=max_attempts, retry_condition=["failed"])
        requests = [EnqueueRolloutRequest(input={"k": k}, config=config) for k in range(count)]
        created = self.call(self.store.enqueue_many_rollouts, requests)
        assert [r.input for r in created] == [{"k": k} for k in range(count)]
        for rollout in created:
            self._add_rollout(rollout.rollout_id, "queuing", config)
            self.model.push(rollout.rollout_id)
        return multiple(*(r.rollout_id for r in created))

    @rule(target=rollouts, max_attempts=st.integers(1, 3), limits=st.integers(0, len(LIMITS) - 1))
    def start_rollout(self, max_attempts: int, limits: int) -> str:
        config = self._config(max_attempts, ["failed", "timeout"], limits)
        started = self.call(self.store.start_rollout, {"started": True}, config=config, worker_id="w-start")
        assert started.status == "preparing"
        assert started.attempt.sequence_id == 1 and started.attempt.status == "preparing"
        self._add_rollout(started.rollout_id, "preparing", config)
        self.model.rollouts[started.rollout_id].attempts.append(
            ModelAttempt(started.attempt.attempt_id, 1, start_time=self.model.now)
        )
        return str(started.rollout_id)

    # -- time ------------------------------------------------------------------------------------------------------

    @precondition(lambda self: self.clock is not None)
    @rule(seconds=st.sampled_from(CLOCK_STEPS))
    def advance_clock(self, seconds: float) -> None:
        """Move the clock; the next scanning call (this ``query_rollouts``) runs the timeout scan, once."""
        assert self.clock is not None
        self.model.now = self.clock.advance(seconds)
        self.call(self.store.query_rollouts, limit=0)
        self.model.scan()

    @precondition(lambda self: self.clock is not None)
    @rule()
    def advance_clock_past_limits(self) -> None:
        """A second way in, so that time moves often enough for attempts to time out between other operations."""
        self.advance_clock(max(CLOCK_STEPS))

    # -- the queue -------------------------------------------------------------------------------------------------

    def _claimed(self, got: Any) -> None:
        expected = self.model.pop_claimable()
        if expected is None:
            assert got is None, f"dequeue returned {got.rollout_id} but the model's queue holds nothing claimable"
            return
        assert got is not None, f"dequeue returned None, expected {expected.rollout_id}"
        assert got.rollout_id == expected.rollout_id, "dequeue broke FIFO order"
        assert got.status == "preparing" and got.attempt.status == "preparing"
        assert got.attempt.sequence_id == len(expected.attempts) + 1
        self.model.new_attempt(expected, got.attempt.attempt_id)

    @rule(worker=st.sampled_from([None, "w1", "w2"]))
    def dequeue(self, worker: Optional[str]) -> None:
        self._claimed(self.call(self.store.dequeue_rollout, worker_id=worker))

    @rule(limit=st.integers(0, 3))
    def dequeue_many(self, limit: int) -> None:
        got = list(self.call(self.store.dequeue_many_rollouts, limit=limit, worker_id="w-many"))
        assert len(got) <= limit
        for item in got:
            self._claimed(item)
        if len(got) < limit:
            assert self.model.pop_claimable() is None, "dequeue_many stopped early while rollouts were queued"

    @rule(rollout_id=rollouts)
    def start_attempt(self, rollout_id: str) -> None:
        started = self.call(self.store.start_attempt, rollout_id, worker_id="w-attempt")
        rollout = self.model.rollouts[rollout_id]
        assert started.attempt.sequence_id == len(rollout.attempts) + 1
        assert started.status == "preparing"
        self.model.new_attempt(rollout, started.attempt.attempt_id)

    # -- status updates --------------------------------------------------------------------------------------------

    @rule(rollout_id=rollouts, status=st.sampled_from(ATTEMPT_STATUSES))
    def update_latest_attempt(self, rollout_id: str, status: str) -> None:
        """Any rollout, including one without attempts (which must raise NotFoundError)."""
        rollout = self.model.rollouts[rollout_id]
        if rollout.attempts:
            self._update_attempt(rollout, rollout.attempts[-1], "latest", status)
            return
        try:
            self.call(self.store.update_attempt, rollout_id, "latest", status=status)
        except NotFoundError as exc:
            assert f"No attempts found for rollout {rollout_id}" in str(exc)
            return
        raise AssertionError("update_attempt on a rollout without attempts did not raise NotFoundError")

    @rule(pick=st.integers(0, 50), attempt_pick=st.integers(0, 5), status=st.sampled_from(ATTEMPT_STATUSES))
    def update_attempt(self, pick: int, attempt_pick: int, status: str) -> None:
        rollout = self._with_attempts(pick)
        if rollout is None:
            return
        attempt = rollout.attempts[attempt_pick % len(rollout.attempts)]
        self._update_attempt(rollout, attempt, attempt.attempt_id, status)

    def _update_attempt(self, rollout: ModelRollout, attempt: ModelAttempt, name: str, status: str) -> None:
        updated = self.call(self.store.update_attempt, rollout.rollout_id, name, status=status)
        assert updated.attempt_id == attempt.attempt_id and updated.status == status
        if status in ("failed", "succeeded"):
            assert updated.end_time is not None
        self.model.update_attempt(rollout, attempt, status)

    @rule(rollout_id=rollouts, status=st.sampled_from(ROLLOUT_STATUSES))
    def update_rollout(self, rollout_id: str, status: str) -> None:
        updated = self.call(self.store.update_rollout, rollout_id, status=status)
        assert updated.status == status
        if status in FINISHED:
            assert updated.end_time is not None
        self.model.set_rollout_status(self.model.rollouts[rollout_id], status)

    @rule(rollout_id=rollouts)
    def requeue(self, rollout_id: str) -> None:
        """Upstream's manual retry: mark the rollout requeuing so that the next dequeue makes a new attempt."""
        self.update_rollout(rollout_id, "requeuing")

    # -- spans -----------------------------------------------------------------------------------------------------

    def _with_attempts(self, pick: int) -> Optional[ModelRollout]:
        """The ``pick``-th rollout (modulo) among those with attempts, so that span and attempt rules hit often."""
        candidates = [r for r in self.model.rollouts.values() if r.attempts]
        return candidates[pick % len(candidates)] if candidates else None

    @rule(pick=st.integers(0, 50), attempt_pick=st.integers(0, 5), explicit=st.one_of(st.none(), st.integers(0, 5)))
    def add_span(self, pick: int, attempt_pick: int, explicit: Optional[int]) -> None:
        rollout = self._with_attempts(pick)
        if rollout is None:
            return
        rollout_id = rollout.rollout_id
        attempt = rollout.attempts[attempt_pick % len(rollout.attempts)]
        if explicit is None:
            sequence_id = self.call(self.store.get_next_span_sequence_id, rollout_id, attempt.attempt_id)
            assert sequence_id == self.model.next_sequence(rollout_id), "span sequence ids are not gap-free"
        else:
            sequence_id = self.model.span_counters.get(rollout_id, 0) + explicit
            self.model.raise_sequence(rollout_id, sequence_id)
        span = make_span(rollout_id, attempt.attempt_id, sequence_id, name="stateful", attributes={"step": sequence_id})
        stored = self.call(self.store.add_span, span)
        assert stored == span
        self.model.span_keys.add((rollout_id, attempt.attempt_id, span.span_id))
        rollout.spans += 1
        self.last_span = span
        allowed = self.model.heartbeat(rollout, attempt)
        actual = self.call(self.store.get_rollout_by_id, rollout_id)
        assert actual.status in allowed, f"after a span, rollout is {actual.status}; expected one of {allowed}"
        rollout.status = actual.status

    @rule()
    def add_duplicate_span(self) -> None:
        if self.last_span is None:
            return
        assert self.call(self.store.add_span, self.last_span) is None, "a duplicate span was stored"

    @rule(rollout_id=rollouts)
    def allocate_sequence_id(self, rollout_id: str) -> None:
        got = self.call(self.store.get_next_span_sequence_id, rollout_id, "at-any")
        assert got == self.model.next_sequence(rollout_id)

    # -- resources -------------------------------------------------------------------------------------------------

    @rule()
    def add_resources(self) -> None:
        update = self.call(self.store.add_resources, {"p": PromptTemplate(template="hi {x}")})
        assert update.version == 1 and update.resources_id not in self.model.resources
        self.model.resources[update.resources_id] = 1
        self.model.latest_resources = update.resources_id

    @rule(resources_id=st.sampled_from(["rs-custom-a", "rs-custom-b"]))
    def update_resources(self, resources_id: str) -> None:
        update = self.call(self.store.update_resources, resources_id, {"p": PromptTemplate(template=resources_id)})
        expected = self.model.resources.get(resources_id, 0) + 1
        assert update.version == expected
        self.model.resources[resources_id] = expected
        self.model.latest_resources = resources_id

    # -- the check after every step --------------------------------------------------------------------------------

    @invariant()
    def store_matches_model(self) -> None:
        """Every rollout's status and latest attempt; the full attempt list and span count of each rollout whose
        model state changed since the last check; resource versions; statistics totals."""
        model = self.model
        changed = [rid for rid, r in model.rollouts.items() if self._checked.get(rid) != _fingerprint(r)]
        rollouts, attempts, spans, resources, latest_resources, stats = self.portal.call(self._snapshot, changed)
        assert [r.rollout_id for r in rollouts] == list(model.rollouts), "rollouts are not in insertion order"
        for rollout in rollouts:
            expected = model.rollouts[rollout.rollout_id]
            assert rollout.status == expected.status, (
                f"rollout {rollout.rollout_id}: store says {rollout.status}, model says {expected.status}"
            )
            if rollout.status in FINISHED:
                assert rollout.end_time is not None, f"finished rollout {rollout.rollout_id} has no end_time"
            latest = getattr(rollout, "attempt", None)
            if expected.latest is None:
                assert latest is None, f"rollout {rollout.rollout_id} has an attempt the model does not know"
            else:
                assert latest is not None, f"rollout {rollout.rollout_id} is missing its latest attempt"
                assert (latest.attempt_id, latest.sequence_id, latest.status) == (
                    expected.latest.attempt_id,
                    expected.latest.sequence_id,
                    expected.latest.status,
                ), f"latest attempt of {rollout.rollout_id} differs"
        for rollout_id in changed:
            expected = model.rollouts[rollout_id]
            store_attempts = [(a.attempt_id, a.sequence_id, a.status) for a in attempts[rollout_id]]
            model_attempts = [(a.attempt_id, a.sequence_id, a.status) for a in expected.attempts]
            assert store_attempts == model_attempts, f"attempts of {rollout_id} differ"
            for attempt in attempts[rollout_id]:
                if attempt.status in ("failed", "succeeded"):
                    assert attempt.end_time is not None, f"attempt {attempt.attempt_id} ended without end_time"
            assert spans[rollout_id] == expected.spans, f"span count of {rollout_id} differs"
            self._checked[rollout_id] = _fingerprint(expected)
        assert resources == model.resources, "resource versions differ"
        assert latest_resources == model.latest_resources
        assert stats.get("total_rollouts") == len(model.rollouts)
        assert stats.get("total_attempts") == sum(len(r.attempts) for r in model.rollouts.values())
        assert stats.get("total_spans") == len(model.span_keys)
        assert stats.get("total_resources") == len(model.resources)

    async def _snapshot(self, changed: List[str]) -> Tuple[Any, ...]:
        store = self.store
        rollouts = list(await store.query_rollouts())
        attempts = {rid: list(await store.query_attempts(rid)) for rid in changed}
        spans = {rid: (await store.query_spans(rid, limit=0)).total for rid in changed}
        resources = {u.resources_id: u.version for u in await store.query_resources()}
        latest = await store.get_latest_resources()
        stats = await store.statistics()
        return rollouts, attempts, spans, resources, latest.resources_id if latest else None, stats


def _fingerprint(rollout: ModelRollout) -> Tuple[Any, ...]:
    return (rollout.status, rollout.spans, tuple((a.attempt_id, a.status) for a in rollout.attempts))


def run_store_state_machine(
    store_factory: StoreFactory,
    *,
    backend: str = "asyncio",
    settings_: Optional[settings] = None,
    options: Optional[Mapping[str, Any]] = None,
    clock: bool = False,
) -> None:
    """Run :class:`StoreStateMachine` against stores from ``store_factory`` on one anyio backend.

    ``options`` go to every ``store_factory`` call; ``clock=True`` also passes each store a fresh
    :class:`~._support.ManualClock` (``clock=``, with ``scan_debounce_seconds`` and ``watchdog_interval=None``) and
    turns on timeouts and the clock rule.
    """
    with anyio.from_thread.start_blocking_portal(backend) as portal:

        def make() -> StoreStateMachine:
            return StoreStateMachine(store_factory, portal, options, ManualClock() if clock else None)

        factory: Any = make  # hypothesis calls it like the machine class
        run_state_machine_as_test(factory, settings=settings_ or stateful_settings())


class StateMachineTests:
    """Random operation sequences against the reference model, through the public API only.

    ``state_machine_settings`` (None: :func:`stateful_settings`, which follows ``AGL_STATEFUL_EXAMPLES``) may be set
    on a subclass, e.g. fewer examples for a slow transport.
    """

    store_options: ClassVar[Mapping[str, Any]] = {}
    state_machine_settings: ClassVar[Optional[settings]] = None
    state_machine_clock: ClassVar[bool] = False

    # the parameter name is deliberately unusual: plugins' own fixtures (e.g. ``backend``) must not be shadowed
    @pytest.mark.parametrize("agl_stateful_backend", stateful_backends())
    def test_random_operation_sequences(self, store_factory: StoreFactory, agl_stateful_backend: str) -> None:
        run_store_state_machine(
            store_factory,
            backend=agl_stateful_backend,
            settings_=self.state_machine_settings or stateful_settings(),
            options=self.store_options,
            clock=self.state_machine_clock,
        )


class EngineStateMachineTests(StateMachineTests):
    """The same, with a manual clock: timeouts and unresponsive attempts join the random sequences."""

    state_machine_clock: ClassVar[bool] = True
