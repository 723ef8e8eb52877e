"""Stop events shared by an algorithm and its runners (threads or processes)."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any, Optional, Protocol

__all__ = ["ExecutionEvent", "ThreadingEvent", "MultiprocessingEvent"]


class ExecutionEvent(Protocol):
    """Set once to ask every side to stop; ``set`` is idempotent."""

    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self, timeout: Optional[float] = None) -> bool: ...


class ThreadingEvent:
    """An :class:`ExecutionEvent` for threads and tasks of one process."""

    __slots__ = ("_evt",)

    def __init__(self) -> None:
        self._evt = threading.Event()

    def set(self) -> None:
        self._evt.set()

    def clear(self) -> None:
        self._evt.clear()

    def is_set(self) -> bool:
        return self._evt.is_set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self._evt.wait(timeout)


class MultiprocessingEvent:
    """An :class:`ExecutionEvent` that child processes (spawned from ``ctx``) share."""

    __slots__ = ("_evt",)

    def __init__(self, *, ctx: Any = None) -> None:
        self._evt = (ctx or multiprocessing).Event()

    def set(self) -> None:
        self._evt.set()

    def clear(self) -> None:
        self._evt.clear()

    def is_set(self) -> bool:
        return self._evt.is_set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self._evt.wait(timeout)

    def __getstate__(self) -> Any:
        return self._evt

    def __setstate__(self, state: Any) -> None:
        self._evt = state
