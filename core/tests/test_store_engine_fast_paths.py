"""The engine's fast paths keep their slow paths' behaviour: one wake-up per wait, validated copies in ``evolve``."""

from __future__ import annotations

import threading
from typing import Any, Dict, List

import anyio
import attrs
import pytest
from agentlightning.store import transitions as tr
from agentlightning.store.waiting import CompletionNotifier
from agentlightning.types.core import Attempt, EnqueueRolloutRequest, Rollout, Worker

# -- CompletionNotifier.wake_when_all ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_wake_when_all_waits_for_every_id(anyio_backend: str) -> None:
    notifier = CompletionNotifier()
    _, waiter = notifier.register(["a", "b", "c"])
    notifier.wake_when_all(waiter, {"a", "b"})
    notifier.notify(["a", "x"])
    assert not waiter.event.is_set()
    notifier.notify(["a"])  # the same id again does not count twice
    assert not waiter.event.is_set()
    notifier.notify(["b"])
    assert waiter.event.is_set()
    assert notifier.take_hits(waiter) == {"a", "b"}


@pytest.mark.anyio
async def test_wake_when_all_counts_reports_not_yet_taken(anyio_backend: str) -> None:
    notifier = CompletionNotifier()
    _, waiter = notifier.register(["a", "b"])
    notifier.notify(["a"])  # before wake_when_all: every report wakes
    assert waiter.event.is_set()
    assert notifier.take_hits(waiter) == {"a"}
    notifier.notify(["b"])  # reported, not yet taken
    notifier.take_hits(waiter)  # taken: a fresh event
    notifier.notify(["b"])
    notifier.wake_when_all(waiter, {"b"})  # already reported since the last take: woken at once
    assert waiter.event.is_set()
    _, other = notifier.register(["z"])
    notifier.wake_when_all(other, set())  # nothing to wait for: woken at once
    assert other.event.is_set()


@pytest.mark.anyio
async def test_wake_when_all_from_another_thread(anyio_backend: str) -> None:
    notifier = CompletionNotifier()
    _, waiter = notifier.register(["a", "b"])
    notifier.wake_when_all(waiter, ["a", "b"])
    notifier.notify(["a"])
    threading.Timer(0.05, notifier.notify, args=(["b"],)).start()
    with anyio.fail_after(5):
        await waiter.event.wait()
    assert notifier.take_hits(waiter) == {"a", "b"}


@pytest.mark.anyio
async def test_wait_for_rollouts_wakes_once_for_many_finishes(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentlightning_memory import InMemoryLightningStore

    store = InMemoryLightningStore(watchdog_interval=1.0)
    takes: List[int] = []
    real_take = CompletionNotifier.take_hits

    def counting_take(self: CompletionNotifier, waiter: Any) -> Any:
        takes.append(1)
        return real_take(self, waiter)

    monkeypatch.setattr(CompletionNotifier, "take_hits", counting_take)
    try:
        rollouts = await store.enqueue_many_rollouts([EnqueueRolloutRequest(input=i) for i in range(25)])
        ids = [r.rollout_id for r in rollouts]
        result: Dict[str, Any] = {}

        async def wait() -> None:
            result["got"] = await store.wait_for_rollouts(rollout_ids=ids, timeout=60)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await anyio.sleep(0.02)
                for rollout_id in reversed(ids):  # finishing out of order: the answer keeps the asked order
                    claimed = await store.start_attempt(rollout_id)
                    await store.update_attempt(rollout_id, claimed.attempt.attempt_id, status="succeeded")
        assert [r.rollout_id for r in result["got"]] == ids
        assert len(takes) == 1  # woken once, when the last one finished, not once per finish
    finally:
        await store.close()


# -- evolve ---------------------------------------------------------------------------------------------------------


def test_evolve_copy_equals_attrs_evolve_and_is_new() -> None:
    rollout = Rollout(rollout_id="ro-1", input={"q": 1}, start_time=1.0, metadata={"m": 1})
    for changes in ({"status": "running"}, {"status": "succeeded", "end_time": 5.0}, {}):
        copy = tr.evolve(rollout, **changes)
        assert copy == attrs.evolve(rollout, **changes) and copy is not rollout
    worker = Worker(worker_id="w")
    assert tr.evolve(worker, status="busy", current_rollout_id="r") == attrs.evolve(
        worker, status="busy", current_rollout_id="r"
    )


def test_evolve_validates_changed_fields_on_the_fast_path() -> None:
    rollout = Rollout(rollout_id="ro-1", input=None, start_time=1.0)
    attempt = Attempt(rollout_id="ro-1", attempt_id="at-1", sequence_id=1, start_time=1.0)
    with pytest.raises(ValueError, match="status"):
        tr.evolve(rollout, status="bogus")
    with pytest.raises(ValueError, match="status"):
        tr.evolve(attempt, status="nope", last_heartbeat_time=2.0)
    with pytest.raises(ValueError, match="status"):
        tr.evolve(Worker(worker_id="w"), status="gone")
    with attrs.validators.disabled():  # as attrs.evolve: no validation while validators are disabled
        assert tr.evolve(rollout, status="bogus").status == "bogus"


def test_evolve_generates_one_copier_per_set_of_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    # the copier generated for a set of changed fields reads them by name and validates them on every later call,
    # in either order of the names; beyond the cache's size the generic copier gives the same copies
    worker = Worker(worker_id="w", status="idle", last_idle_time=1.0)
    for cached in (True, False):
        if not cached:
            monkeypatch.setattr(tr, "_CHANGE_COPIERS", {})
            monkeypatch.setattr(tr, "_CHANGE_COPIERS_SIZE", 0)
        for _ in range(2):
            for changes in (
                {"status": "busy", "current_rollout_id": "r", "last_busy_time": 2.0},
                {"last_busy_time": 3.0, "current_rollout_id": None, "status": "idle"},
                {"last_dequeue_time": 4.0},
            ):
                copy = tr.evolve(worker, **changes)
                assert copy == attrs.evolve(worker, **changes) and copy is not worker
            with pytest.raises(ValueError, match="status"):
                tr.evolve(worker, last_busy_time=2.0, status="gone")
            with pytest.raises(TypeError):
                tr.evolve(worker, no_such_field=1)
        assert worker == Worker(worker_id="w", status="idle", last_idle_time=1.0)
        assert bool(tr._CHANGE_COPIERS) is cached


def test_evolve_runs_init_for_converted_fields_and_hooks() -> None:
    @attrs.define
    class Converted:
        n: int = attrs.field(converter=int)
        label: str = "x"

    @attrs.define
    class Hooked:
        n: int
        doubled: int = attrs.field(init=False)

        def __attrs_post_init__(self) -> None:
            self.doubled = 2 * self.n

    assert tr.evolve(Converted(n=1), n="7").n == 7  # type: ignore[arg-type]
    assert tr.evolve(Converted(n=1), label="y") == Converted(n=1, label="y")
    assert tr.evolve(Hooked(n=2), n=5).doubled == 10
    assert tr.evolve(Hooked(n=3)).doubled == 6  # no changes: still a whole instance


def test_evolve_copies_classes_without_slots() -> None:
    @attrs.define(slots=False)
    class Plain:
        a: int
        b: str = attrs.field(default="x", validator=attrs.validators.instance_of(str))

    original = Plain(a=1)
    copy = tr.evolve(original, b="y")
    assert copy == Plain(a=1, b="y") and original.b == "x"
    with pytest.raises(TypeError):
        tr.evolve(original, b=3)


def test_heartbeat_copy_equals_attrs_evolve_for_every_attempt_class() -> None:
    # the heartbeat's own copier (one field replaced) for Attempt, and the validated path for a class whose
    # last_heartbeat_time a validator watches
    attempt = Attempt(
        rollout_id="ro-1",
        attempt_id="at-1",
        sequence_id=2,
        start_time=1.0,
        status="running",
        worker_id="w",
        metadata={"m": 1},
    )
    for now in (5.0, 6.0):
        copy = tr.with_heartbeat(attempt, now)
        assert copy == attrs.evolve(attempt, last_heartbeat_time=now) and copy is not attempt
        assert attempt.last_heartbeat_time is None

    @attrs.define
    class Watched:
        attempt_id: str
        last_heartbeat_time: Any = attrs.field(default=None, validator=attrs.validators.instance_of(float))

    watched: Any = Watched(attempt_id="a", last_heartbeat_time=1.0)
    with pytest.raises(TypeError):
        tr.with_heartbeat(watched, "late")  # type: ignore[arg-type]
    assert attrs.asdict(tr.with_heartbeat(watched, 2.0)) == {"attempt_id": "a", "last_heartbeat_time": 2.0}


# -- heartbeat ------------------------------------------------------------------------------------------------------


class _HeartbeatTx:
    """Records the attempt writes of ``tr.heartbeat``; ``record_heartbeat`` only when ``cheap``."""

    def __init__(self, cheap: bool) -> None:
        self.calls: List[Any] = []
        if cheap:
            self.record_heartbeat = lambda attempt: self.calls.append(("record_heartbeat", attempt))

    def update_attempt(self, attempt: Attempt) -> None:
        self.calls.append(("update_attempt", attempt))

    def get_latest_attempts(self, rollout_ids: List[str]) -> Dict[str, Attempt]:
        return {}


@pytest.mark.parametrize("cheap", [True, False])
@pytest.mark.parametrize("status", ["running", "preparing", "unresponsive", "timeout", "succeeded"])
def test_heartbeat_uses_record_heartbeat_when_only_the_time_changes(cheap: bool, status: str) -> None:
    """A backend's cheaper ``record_heartbeat`` gets the heartbeats that change nothing but ``last_heartbeat_time``;
    a heartbeat that revives the attempt (preparing/unresponsive -> running) is an ``update_attempt``."""
    rollout = Rollout(rollout_id="ro-1", input=None, start_time=1.0, status="running")
    attempt = Attempt(rollout_id="ro-1", attempt_id="at-1", sequence_id=1, start_time=1.0, status=status)  # type: ignore[arg-type]
    tx = _HeartbeatTx(cheap)
    tr.heartbeat(tx, rollout, attempt, 5.0, tr.Effects())  # type: ignore[arg-type]
    revived = status in ("preparing", "unresponsive")
    method = "record_heartbeat" if cheap and not revived else "update_attempt"
    expected = attrs.evolve(attempt, last_heartbeat_time=5.0, status="running" if revived else status)
    assert tx.calls == [(method, expected)]
