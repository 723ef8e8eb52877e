"""Ctrl-C while the algorithm runs: stop it cleanly, then raise ``KeyboardInterrupt``, whatever it was awaiting.

Left to itself, asyncio turns SIGINT into a cancellation of the main task, and that cancellation can be absorbed by a
cancel scope that was being cancelled at the same moment (a deadline, a finished wait): the run then returns as if
training were over. Here SIGINT is received as an event instead: it cancels the algorithm through a cancel scope of
our own and is re-raised as ``KeyboardInterrupt`` once the event loop has finished, on asyncio and trio alike. A
second Ctrl-C while the algorithm is still unwinding interrupts at once, as usual.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Awaitable, Callable, List

import anyio
import anyio.abc

from ._bundles import unwrap_group

__all__ = ["run_interruptibly"]


def run_interruptibly(fn: Callable[..., Awaitable[Any]], *args: Any, backend: str) -> Any:
    """``anyio.run(fn, *args)``; a SIGINT during it cancels ``fn`` and raises ``KeyboardInterrupt`` after it returned.

    Off the main thread (where signals cannot be received) this is plain ``anyio.run``. An exception of ``fn``
    propagates as itself (not inside an exception group), unless a Ctrl-C came first: then ``KeyboardInterrupt``."""
    if threading.current_thread() is not threading.main_thread():
        return anyio.run(fn, *args, backend=backend)
    interrupted: List[bool] = []

    async def main() -> Any:
        result: List[Any] = []
        async with anyio.create_task_group() as tg:

            async def watch(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
                with anyio.open_signal_receiver(signal.SIGINT) as signals:
                    task_status.started()
                    async for _ in signals:
                        interrupted.append(True)
                        tg.cancel_scope.cancel()
                        return  # the receiver closes: a second Ctrl-C is an immediate KeyboardInterrupt

            await tg.start(watch)  # the receiver is installed before the algorithm starts
            result.append(await fn(*args))
            tg.cancel_scope.cancel()
        return result[0] if result else None

    try:
        result = anyio.run(main, backend=backend)
    except BaseException as exc:
        if interrupted:
            raise KeyboardInterrupt from exc
        inner = unwrap_group(exc)
        if inner is exc:
            raise
        raise inner from None
    if interrupted:
        raise KeyboardInterrupt
    return result
