"""Replays the response of a recent non-idempotent request whose ``Idempotency-Key`` comes again (a client retry)."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, Tuple

from .aio import new_event

Response = Tuple[int, bytes]


class IdempotencyCache:
    """Recent responses by key, bounded in count, in bytes and in age (an entry older than ``ttl_seconds`` is never
    replayed, and is dropped at the latest when a newer one is kept); concurrent requests with one key run the
    handler once.

    Server errors (5xx) are not kept, so that a retry runs the request again. The cache lives in one server
    process; over a store that records idempotency keys itself (SQLite, PostgreSQL: see
    :mod:`agentlightning.store.request_keys`) the app also serves keyed requests through the store, so that a retry
    reaching another worker, server or a restarted one is recognised too.
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        ttl_seconds: float = 600.0,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self.ttl_seconds = ttl_seconds
        self.max_bytes = max_bytes
        self.bytes = 0
        """Bytes of the kept answers (bodies and keys)."""
        self._done: OrderedDict[str, Tuple[float, Response]] = OrderedDict()
        self._running: Dict[str, Any] = {}

    def _lookup(self, key: str) -> Response | None:
        entry = self._done.get(key)
        if entry is None:
            return None
        stamp, response = entry
        if self._clock() - stamp > self.ttl_seconds:
            self._forget(key)
            return None
        return response

    @staticmethod
    def _compact(response: Response) -> Response:
        """``response`` with a body of its own length: a small body from orjson holds a ~4 KB buffer (one kept
        answer per dequeue would cost ~10 times the bytes counted)."""
        status, body = response
        return status, bytes(memoryview(body))

    @staticmethod
    def _size(key: str, response: Response) -> int:
        return len(key) + len(response[1]) + 64

    def _forget(self, key: str) -> None:
        _, response = self._done.pop(key)
        self.bytes -= self._size(key, response)

    def __len__(self) -> int:
        return len(self._done)

    def _remember(self, key: str, response: Response) -> None:
        now = self._clock()
        if key in self._done:
            self._forget(key)
        size = self._size(key, response)
        if size > self.max_bytes:
            return  # an answer larger than the whole cache: a retry runs the request again
        self._done[key] = (now, self._compact(response))
        self.bytes += size
        done = self._done
        while done:  # oldest first: expired entries, then whatever exceeds the bounds
            oldest = next(iter(done))
            if len(done) > self.max_entries or self.bytes > self.max_bytes or now - done[oldest][0] > self.ttl_seconds:
                self._forget(oldest)
            else:
                break

    async def run(self, key: str, handler: Callable[[], Awaitable[Response]]) -> Response:
        while True:
            cached = self._lookup(key)
            if cached is not None:
                return cached
            running = self._running.get(key)
            if running is None:
                break
            await running.wait()
        event = self._running[key] = new_event()
        try:
            response = await handler()
            if response[0] < 500:
                self._remember(key, response)
            return response
        finally:
            del self._running[key]
            event.set()
