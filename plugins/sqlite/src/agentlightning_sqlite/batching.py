"""Group commit: write transactions that one event loop issues together share one SQLite commit.

The backend sends here the writes that would otherwise each wait for the write lock on a worker thread (another
process or thread is writing, or every commit fsyncs): waiting once per batch instead of once per write is where
contention and fsyncs cost the most.

A write's caller becomes the *leader* of a new :class:`Batch` unless one is still open on its thread, in which case
it joins that batch and waits. The leader yields to the event loop until the batch stops growing, closes it and has
the backend run every queued write in one transaction (see ``SqliteBackend._execute_batch``): a write that fails is
rolled back alone (the batch is rolled back and run again with a SAVEPOINT per write) and its caller gets its error;
the others commit. Every caller returns only after the commit, so durability is that of a lone transaction, while the
commit and the pages written once per transaction (WAL frames, counters, index pages) are paid once per batch.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Generic, List, Optional, TypeVar

import anyio
import anyio.lowlevel

__all__ = ["Batch", "TurnBatch", "Write", "MAX_BATCH"]

T = TypeVar("T")

MAX_BATCH = 64
"""Writes per batch at most; later ones open the next batch."""

MAX_GATHER_ROUNDS = 4
"""Event-loop turns a leader waits, at most, for more writes to join (it stops as soon as a turn adds none)."""


class Write(Generic[T]):
    """One queued write: its function, then its result or error."""

    __slots__ = ("error", "fn", "result")

    def __init__(self, fn: Callable[[Any], T]) -> None:
        self.fn = fn
        self.result: Optional[T] = None
        self.error: Optional[BaseException] = None

    def outcome(self) -> T:
        """The write's result, or its error raised."""
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class Batch:
    """The writes of one group commit, in the order they were issued; open until its leader starts running it."""

    __slots__ = ("done", "open", "writes")

    def __init__(self, first: Write[Any]) -> None:
        self.writes: List[Write[Any]] = [first]
        self.open = True
        self.done = anyio.Event()

    def join(self, write: Write[Any]) -> bool:
        """Queue ``write`` here if the batch is still open and not full."""
        if not self.open or len(self.writes) >= MAX_BATCH:
            return False
        self.writes.append(write)
        return True

    async def gather(self) -> None:
        """Let the event loop run the other ready tasks until none of them adds a write; then close the batch."""
        try:
            seen = 0
            rounds = 0
            while len(self.writes) != seen and len(self.writes) < MAX_BATCH and rounds < MAX_GATHER_ROUNDS:
                seen = len(self.writes)
                rounds += 1
                await anyio.lowlevel.checkpoint()
        finally:
            self.open = False

    def fail(self, error: BaseException) -> None:
        """Give ``error`` to every write that has no outcome yet (the batch could not commit)."""
        for write in self.writes:
            write.result = None
            write.error = error


class TurnBatch:
    """The inline writes one asyncio event loop issues in one turn, committed together when the turn ends.

    The first write schedules the commit (``loop.call_soon``), so no write waits for more to join: the writes that the
    other tasks of the same turn issue simply find the batch open. Each caller awaits its own future, resolved after
    the commit (see ``SqliteBackend._commit_turn``).
    """

    __slots__ = ("futures", "writes")

    def __init__(self) -> None:
        self.writes: List[Write[Any]] = []
        self.futures: List[asyncio.Future[Any]] = []

    def add(self, write: Write[Any], future: asyncio.Future[Any]) -> None:
        self.writes.append(write)
        self.futures.append(future)

    def fail(self, error: BaseException) -> None:
        """Give ``error`` to every write (the batch could not commit)."""
        for write in self.writes:
            write.result = None
            write.error = error

    def settle(self) -> None:
        """Hand each caller its write's outcome (a cancelled caller's future is left as it is)."""
        for write, future in zip(self.writes, self.futures, strict=True):
            if future.done():
                continue
            if write.error is not None:
                future.set_exception(write.error)
            else:
                future.set_result(write.result)
