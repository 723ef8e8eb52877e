"""The watchdog thread, the scan debouncer and the completion notifier of the store engine."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any, List

import anyio
import pytest
from agentlightning.store.waiting import CompletionNotifier
from agentlightning.store.watchdog import Debouncer, Watchdog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_debouncer_lets_the_first_caller_through_then_waits() -> None:
    clock = Clock()
    debouncer = Debouncer(5.0, clock)
    assert debouncer.claim()
    assert not debouncer.claim()
    clock.now += 4.9
    assert not debouncer.claim()
    clock.now += 0.2
    assert debouncer.claim()


def test_debouncer_zero_scans_every_call_and_negative_is_refused() -> None:
    debouncer = Debouncer(0)
    assert all(debouncer.claim() for _ in range(5))
    with pytest.raises(ValueError, match="scan_debounce_seconds"):
        Debouncer(-1)


def test_exactly_one_concurrent_caller_wins() -> None:
    debouncer = Debouncer(60.0)
    barrier = threading.Barrier(8)
    wins: List[bool] = []

    def race() -> None:
        barrier.wait()
        wins.append(debouncer.claim())

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sorted(wins) == [False] * 7 + [True]


class Owner:
    def __init__(self) -> None:
        self.ticks = threading.Event()
        self.count = 0
        self.seen: List[float] = []

    def tick(self, now: float) -> None:
        self.count += 1
        self.seen.append(now)
        self.ticks.set()


def test_watchdog_ticks_on_its_own_and_stops() -> None:
    owner = Owner()
    watchdog = Watchdog(owner, "tick", 0.01)
    assert owner.ticks.wait(5.0)
    watchdog.stop()
    assert not watchdog.alive
    assert owner.seen and all(abs(now - time.time()) < 60 for now in owner.seen), "default clock: wall time"


def test_watchdog_hands_its_clock_reading_to_the_owner() -> None:
    owner, clock = Owner(), Clock()
    watchdog = Watchdog(owner, "tick", 0.01, clock=clock)
    assert owner.ticks.wait(5.0)
    watchdog.stop()
    assert set(owner.seen) == {1000.0}


def test_watchdog_survives_errors_and_ends_with_its_owner() -> None:
    class Failing:
        calls = 0

        def tick(self, now: float) -> None:
            Failing.calls += 1
            raise RuntimeError("boom")

    owner: Any = Failing()
    watchdog = Watchdog(owner, "tick", 0.01)
    deadline = time.monotonic() + 5
    while Failing.calls < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert Failing.calls >= 2
    watchdog.stop()
    plain: Any = Owner()
    watchdog = Watchdog(plain, "tick", 0.01)
    assert plain.ticks.wait(5.0)
    del plain
    gc.collect()
    watchdog._thread.join(5)
    assert not watchdog.alive
    with pytest.raises(ValueError, match="watchdog_interval"):
        Watchdog(Owner(), "tick", 0)


@pytest.mark.anyio
async def test_notifier_wakes_a_waiter_from_another_thread(anyio_backend: str) -> None:
    notifier = CompletionNotifier()
    key, waiter = notifier.register(["a", "b"])
    threading.Timer(0.05, notifier.notify, args=(["x", "b"],)).start()
    with anyio.fail_after(5):
        await waiter.event.wait()
    assert notifier.take_hits(waiter) == {"b"}
    assert not waiter.event.is_set()
    notifier.unregister(key)
    assert len(notifier) == 0


@pytest.mark.anyio
async def test_notifier_ignores_unrelated_ids(anyio_backend: str) -> None:
    notifier = CompletionNotifier()
    _, waiter = notifier.register(["a"])
    notifier.notify(["z"])
    await anyio.sleep(0.01)
    assert not waiter.event.is_set()
    assert notifier.take_hits(waiter) == set()


@pytest.mark.anyio
async def test_notifier_on_the_waiters_own_loop_sets_the_event_at_once(anyio_backend: str) -> None:
    notifier = CompletionNotifier()
    _, waiter = notifier.register(["a"])
    notifier.notify(["a"])  # from the waiter's own loop: no round trip through the loop's thread-safe entry
    assert waiter.event.is_set()
    assert notifier.take_hits(waiter) == {"a"}
