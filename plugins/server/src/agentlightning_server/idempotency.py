"""Replays the response of a recent non-idempotent request whose ``Idempotency-Key`` comes again (a client retry)."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Awaitable, Callable, Dict, Tuple

import anyio

Response = Tuple[int, bytes]


class IdempotencyCache:
    """Recent responses by key, bounded in size and age; concurrent requests with one key run the handler once.

    Server errors (5xx) are not kept, so that a retry runs the request again. The cache lives in one server
    process: with several workers a retry that reaches another worker is not recognised.
    """

    def __init__(self, max_entries: int = 10_000, ttl_seconds: float = 600.0) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._done: OrderedDict[str, Tuple[float, Response]] = OrderedDict()
        self._running: Dict[str, anyio.Event] = {}

    def _lookup(self, key: str) -> Response | None:
        entry = self._done.get(key)
        if entry is None:
            return None
        stamp, response = entry
        if time.monotonic() - stamp > self.ttl_seconds:
            del self._done[key]
            return None
        return response

    def _remember(self, key: str, response: Response) -> None:
        self._done[key] = (time.monotonic(), response)
        self._done.move_to_end(key)
        while len(self._done) > self.max_entries:
            self._done.popitem(last=False)

    async def run(self, key: str, handler: Callable[[], Awaitable[Response]]) -> Response:
        while True:
            cached = self._lookup(key)
            if cached is not None:
                return cached
            running = self._running.get(key)
            if running is None:
                break
            await running.wait()
        event = self._running[key] = anyio.Event()
        try:
            response = await handler()
            if response[0] < 500:
                self._remember(key, response)
            return response
        finally:
            del self._running[key]
            event.set()
