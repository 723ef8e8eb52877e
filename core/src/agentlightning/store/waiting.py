"""Wake ``wait_for_rollouts`` callers when rollouts finish, across threads and event loops (asyncio and trio).

Each waiter registers the rollout ids it waits for together with a wake-up callable bound to its own event loop
(``loop.call_soon_threadsafe`` on asyncio, the trio token's ``run_sync_soon`` on trio; a plain ``event.set()`` when
called on that loop already). A writer that finished rollouts calls :meth:`CompletionNotifier.notify` from whatever
thread it runs on; only the waiters interested in those ids are woken, and each is told which of its ids finished, so
a waiter on N rollouts does O(N) work in total. A waiter that only needs all of its ids (``wait_for_rollouts``) asks,
with :meth:`CompletionNotifier.wake_when_all`, to be woken once each of them has been reported, rather than once per
report: N finishes then cost one wake-up instead of N.
"""

from __future__ import annotations

import itertools
import threading
from typing import Callable, Dict, Iterable, Optional, Set

import anyio
import sniffio

__all__ = ["CompletionNotifier", "RecheckPacer", "Waiter", "loop_waker"]


def loop_waker(event: anyio.Event) -> Callable[[], None]:
    """A thread-safe callable that sets ``event`` on the current event loop.

    Called from that loop itself (the usual case: a store call on the waiter's loop finished the rollouts) it sets
    the event at once; from another thread or loop it goes through the loop's thread-safe entry (which costs a
    self-pipe write and an extra loop wake-up).
    """
    library = sniffio.current_async_library()
    if library == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()

        def wake_trio() -> None:
            try:
                if _current_trio_token() is token:
                    event.set()
                else:
                    token.run_sync_soon(event.set)
            except trio.RunFinishedError:
                pass

        return wake_trio
    import asyncio

    loop = asyncio.get_running_loop()

    def wake_asyncio() -> None:
        try:
            if _current_asyncio_loop() is loop:
                event.set()
            else:
                loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    return wake_asyncio


def _current_asyncio_loop() -> object:
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _current_trio_token() -> object:
    import trio

    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None


class Waiter:
    """One pending ``wait_for_rollouts`` call."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.pending: Set[str] = set(ids)
        self.hits: Set[str] = set()
        self.outstanding: Optional[Set[str]] = None
        """With :meth:`CompletionNotifier.wake_when_all`: the ids still to be reported before a wake-up (None: wake
        on every report)."""
        self.event = anyio.Event()
        self.wake = loop_waker(self.event)

    def rearm(self) -> None:
        """A fresh event for the next wait (call on the waiter's loop, with the notifier lock held)."""
        self.event = anyio.Event()
        self.wake = loop_waker(self.event)


class CompletionNotifier:
    """Registry of waiters; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: Dict[int, Waiter] = {}
        self._ids = itertools.count()

    def register(self, ids: Iterable[str]) -> tuple[int, Waiter]:
        waiter = Waiter(ids)
        with self._lock:
            key = next(self._ids)
            self._waiters[key] = waiter
        return key, waiter

    def unregister(self, key: int) -> None:
        with self._lock:
            self._waiters.pop(key, None)

    def take_hits(self, waiter: Waiter) -> Set[str]:
        """The ids reported finished since the last call, and a fresh event to wait on for the next ones."""
        with self._lock:
            hits, waiter.hits = waiter.hits, set()
            waiter.rearm()
            return hits

    def wake_when_all(self, waiter: Waiter, ids: Iterable[str]) -> None:
        """Wake ``waiter`` only once every one of ``ids`` has been reported (counting reports not yet taken with
        :meth:`take_hits`); it is woken at once when they all have been already."""
        with self._lock:
            waiter.outstanding = set(ids) - waiter.hits
            wake = None if waiter.outstanding else waiter.wake
        if wake is not None:
            wake()

    def notify(self, rollout_ids: Iterable[str]) -> None:
        ids = list(rollout_ids)
        if not ids:
            return
        wakes = []
        with self._lock:
            for waiter in self._waiters.values():
                found = [i for i in ids if i in waiter.pending]
                if found:
                    waiter.hits.update(found)
                    outstanding = waiter.outstanding
                    if outstanding is not None:
                        outstanding.difference_update(found)
                        if outstanding:
                            continue
                    wakes.append(waiter.wake)
        for wake in wakes:
            wake()

    def wake_all(self) -> None:
        """Report every id of every waiter as finished, so that each re-reads its rollouts (after finish
        notifications may have been lost; a report the re-read does not confirm is dropped by the waiter)."""
        with self._lock:
            pending = {rollout_id for waiter in self._waiters.values() for rollout_id in waiter.pending}
        self.notify(pending)

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiters)


RECHECK_SHARE = 0.1
"""The share of a waiter's time that its full re-reads of its pending ids may take (see :class:`RecheckPacer`)."""

PACED_FROM_IDS = 100
"""Re-reads of fewer pending ids than this are not paced: their time is mostly fixed costs (a lock, a round trip)."""


class RecheckPacer:
    """Paces a waiter's full re-reads of its pending ids (after another process wrote, or at a timeout scan).

    A re-read costs time in proportion to the ids still pending; re-read every few milliseconds, a waiter on 200,000
    rollouts would spend all its time (and the store's) re-reading them, and a run's cost would grow with the square
    of its size. The pacer learns the cost per id of the last re-read and lets the next one run only after a pause
    that keeps re-reads to about ``share`` of the waiter's time. A waiter on fewer than :data:`PACED_FROM_IDS` ids
    re-reads as often as it asks; one on many notices finishes a little later.
    """

    __slots__ = ("_last_end", "_seconds_per_id", "_share")

    def __init__(self, share: Optional[float] = None) -> None:
        share = RECHECK_SHARE if share is None else share
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share!r}")
        self._share = share
        self._seconds_per_id = 0.0
        self._last_end = float("-inf")

    def pause(self, pending: int) -> float:
        """Seconds to keep between the end of the last re-read and the next one of ``pending`` ids."""
        if pending < PACED_FROM_IDS:
            return 0.0
        return self._seconds_per_id * pending * (1.0 / self._share - 1.0)

    def due(self, now: float, pending: int) -> bool:
        """Whether a re-read of ``pending`` ids may run at ``now`` (a monotonic time)."""
        return now >= self._last_end + self.pause(pending)

    def record(self, started: float, ended: float, count: int) -> None:
        """A re-read of ``count`` ids ran from ``started`` to ``ended`` (monotonic times)."""
        if count > 0:
            self._seconds_per_id = max(ended - started, 0.0) / count
        self._last_end = ended
