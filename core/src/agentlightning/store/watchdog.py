"""Timeout and unresponsive detection: a debounced scan inside store calls plus a daemon thread for idle stores.

Upstream only scanned at the start of some store methods, so an idle store never timed an attempt out (see
docs/store.md). Here a :class:`Watchdog` thread also runs the same scan every ``interval`` seconds through
``backend.run_sync``; it holds only a weak reference to its owner, so a store that is dropped without ``close()``
does not keep a thread alive for ever.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any, Callable, Optional

__all__ = ["Debouncer", "Watchdog"]

logger = logging.getLogger(__name__)


class Debouncer:
    """Lets one caller through per ``interval`` seconds (the first immediately; ``interval=0`` lets everyone)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        if interval < 0:
            raise ValueError(f"scan_debounce_seconds must be >= 0, got {interval!r}")
        self.interval = interval
        self._clock = clock
        self._last: Optional[float] = None
        self._lock = threading.Lock()

    def claim(self) -> bool:
        """Whether the caller should scan now; at most one of several concurrent callers wins."""
        if self.interval == 0:
            return True
        now = self._clock()
        last = self._last
        if last is not None and now - last < self.interval:
            return False
        with self._lock:
            if self._last is not None and now - self._last < self.interval:
                return False
            self._last = now
            return True


class Watchdog:
    """A daemon thread calling ``owner.<method>(clock())`` every ``interval`` seconds until stopped.

    ``clock`` (default ``time.time``) is read at every tick and handed to the method as the scan's "now", so a manual
    clock in tests decides what is overdue while the thread keeps its real-time interval.
    """

    def __init__(
        self,
        owner: Any,
        method: str,
        interval: float,
        name: str = "agl-store-watchdog",
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"watchdog_interval must be > 0 or None, got {interval!r}")
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(weakref.ref(owner), method), name=name, daemon=True)
        self._thread.start()

    def _loop(self, owner_ref: weakref.ref[Any], method: str) -> None:
        while not self._stop.wait(self.interval):
            owner = owner_ref()
            if owner is None:
                return
            try:
                getattr(owner, method)(self.clock())
            except Exception:  # the next tick tries again; a closed backend stops the loop through stop()
                logger.exception("store watchdog scan failed")
            del owner

    def stop(self, join_timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(join_timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
