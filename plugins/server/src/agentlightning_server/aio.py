"""Async primitives for the server and the client that skip anyio's backend lookup on asyncio; other loops (trio)
go through anyio. On asyncio, ``anyio.fail_after`` costs ~8 us per request against ~3 us for ``asyncio.timeout``."""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType
from typing import Any, AsyncContextManager, Optional, Type

import anyio

__all__ = ["NATIVE_TIMEOUT", "asyncio_loop", "time_limit", "new_event"]

NATIVE_TIMEOUT = sys.version_info >= (3, 11)
"""Whether ``asyncio.timeout`` exists (Python 3.11+)."""


def asyncio_loop() -> Optional[asyncio.AbstractEventLoop]:
    """The running asyncio loop; None on another loop (trio)."""
    return asyncio._get_running_loop()


class _AnyioDeadline:
    """``anyio.fail_after`` as an async context manager."""

    __slots__ = ("_scope",)

    def __init__(self, seconds: float) -> None:
        self._scope = anyio.fail_after(seconds)

    async def __aenter__(self) -> None:
        self._scope.__enter__()

    async def __aexit__(
        self, kind: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> Optional[bool]:
        return self._scope.__exit__(kind, exc, tb)


def time_limit(seconds: float) -> AsyncContextManager[Any]:
    """``async with time_limit(s):`` raises :class:`TimeoutError` when its body runs longer than ``s`` seconds."""
    if NATIVE_TIMEOUT and asyncio_loop() is not None:
        return asyncio.timeout(seconds)  # type: ignore[attr-defined, no-any-return, unused-ignore]
    return _AnyioDeadline(seconds)


def new_event() -> Any:
    """An event with ``set()`` and ``await wait()``: asyncio's on asyncio, else anyio's."""
    return asyncio.Event() if asyncio_loop() is not None else anyio.Event()
