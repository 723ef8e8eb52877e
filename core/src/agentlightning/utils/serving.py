"""Upstream v0.3's building blocks for serving a uvicorn server: in the current event loop, in a thread, or in a
child process, each telling its caller when the server is ready (or why it is not).

* :func:`run_uvicorn_asyncio` serves in the calling event loop and returns once the server listens (and answers its
  health URL), or serves until cancelled (``wait_for_serve=True``).
* :func:`run_uvicorn_thread` / :func:`run_uvicorn_subprocess` are thread / process targets: they put one
  :class:`ChildEvent` (``"ready"`` or ``"error"``) on a queue, then serve until asked to stop (a
  ``threading.Event``; SIGTERM or SIGINT for a process, which then exits with code 0).

uvicorn is passed in by the caller (a ``uvicorn.Server``); nothing here imports it. Health checks use the standard
library's HTTP client and ignore proxy settings (the server is local).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import signal
import threading
import time
import traceback
from contextlib import asynccontextmanager, suppress
from typing import Any, AsyncContextManager, AsyncIterator, Literal, Optional

import attrs

__all__ = [
    "ChildEvent",
    "ServerUnhealthyError",
    "noop_context",
    "probe_health",
    "run_uvicorn_asyncio",
    "run_uvicorn_subprocess",
    "run_uvicorn_thread",
    "shutdown_uvicorn_server",
]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05


@attrs.define
class ChildEvent:
    """What a serving thread or process reports to its launcher: ``"ready"``, or ``"error"`` with the cause."""

    kind: Literal["ready", "error"]
    exc_type: Optional[str] = None
    message: Optional[str] = None
    traceback: Optional[str] = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> ChildEvent:
        return cls(
            kind="error",
            exc_type=type(exc).__name__,
            message=str(exc),
            traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )


class ServerUnhealthyError(RuntimeError):
    """The server listens but its health URL did not answer 200 in time."""


@asynccontextmanager
async def noop_context() -> AsyncIterator[None]:
    """An async context manager that does nothing (the default ``serve_context``)."""
    yield


def probe_health(url: str, timeout: float) -> str:
    """``GET url`` once: ``"ok"`` for a 200, otherwise what was seen instead (``"HTTP 503"``, a connection error)."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=max(0.1, timeout)) as response:
            return "ok" if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


async def _wait_healthy(url: str, deadline: float) -> Optional[str]:
    """None once ``url`` answers 200; the last outcome when ``deadline`` (monotonic) passed first."""
    last = "no answer yet"
    while True:
        last = await asyncio.to_thread(probe_health, url, min(1.0, deadline - time.monotonic()))
        if last == "ok":
            return None
        if time.monotonic() >= deadline:
            return last
        await asyncio.sleep(POLL_SECONDS)


async def shutdown_uvicorn_server(server: Any, task: asyncio.Task[None], timeout: float = 5.0) -> None:
    """Ask ``server`` to exit and await its serving ``task``; cancel the task when it takes over ``timeout`` s."""
    server.should_exit = True
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
    except asyncio.TimeoutError:
        logger.error("uvicorn server did not stop within %.1f s; cancelling it", timeout)
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
    except Exception:
        logger.debug("uvicorn server ended with an error while stopping", exc_info=True)


async def _serve(server: Any, serve_context: AsyncContextManager[Any]) -> None:
    try:
        async with serve_context:
            await server.serve()
    except (SystemExit, OSError) as exc:  # uvicorn exits the process when it cannot bind: keep it in this task
        raise RuntimeError(f"Uvicorn server failed to serve: {exc!r}") from exc
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise RuntimeError(f"Uvicorn server failed to serve: {exc!r}") from exc
    if not server.started:
        raise RuntimeError("Uvicorn server failed to serve: its startup did not complete (see its log)")


async def run_uvicorn_asyncio(
    uvicorn_server: Any,
    serve_context: AsyncContextManager[Any],
    timeout: float = 60.0,
    health_url: Optional[str] = None,
    wait_for_serve: bool = True,
    kill_unhealthy_server: bool = True,
) -> asyncio.Task[None]:
    """Serve ``uvicorn_server`` in this event loop, inside ``serve_context``.

    Waits up to ``timeout`` seconds for it to listen and, with ``health_url``, to answer it with 200. Raises
    ``RuntimeError`` when serving fails ("Uvicorn server failed to serve") or does not start in time; an unhealthy
    server is stopped and reported (:class:`ServerUnhealthyError`), or with ``kill_unhealthy_server=False`` logged
    and left running. Returns the serving task (``wait_for_serve=False``), or serves until that task ends
    (``wait_for_serve=True``); cancelling the call stops the server gracefully."""
    task: asyncio.Task[None] = asyncio.ensure_future(_serve(uvicorn_server, serve_context))
    try:
        await _watch_startup(uvicorn_server, task, timeout, health_url, kill_unhealthy_server)
        if wait_for_serve:
            await asyncio.shield(task)
    except asyncio.CancelledError:
        await shutdown_uvicorn_server(uvicorn_server, task)
        raise
    return task


async def _watch_startup(
    server: Any, task: asyncio.Task[None], timeout: float, health_url: Optional[str], kill_unhealthy: bool
) -> None:
    deadline = time.monotonic() + timeout
    while not server.started and not task.done() and time.monotonic() < deadline:  # noqa: ASYNC110 - uvicorn's flag
        await asyncio.sleep(POLL_SECONDS)
    if task.done():
        task.result()  # raises "Uvicorn server failed to serve"
        raise RuntimeError("Uvicorn server failed to serve: it stopped during startup")
    if not server.started:
        await shutdown_uvicorn_server(server, task)
        raise RuntimeError(f"Server did not start up within {timeout} seconds")
    if health_url is None:
        return
    last = await _wait_healthy(health_url, deadline)
    if last is None:
        return
    if kill_unhealthy:
        await shutdown_uvicorn_server(server, task)
        raise ServerUnhealthyError(
            f"Server is not healthy at {health_url} within {timeout} seconds (last check: {last}); it has been killed"
        )
    logger.error("Server is not healthy at %s (last check: %s); it is left running", health_url, last)


def _startup_failure(exc: BaseException, timeout: float) -> ChildEvent:
    if isinstance(exc, ServerUnhealthyError) or str(exc).startswith("Server did not start up within"):
        return ChildEvent.from_exception(exc)
    event = ChildEvent.from_exception(exc)
    event.message = f"Server did not start up within {timeout} seconds: {exc}"
    return event


async def _serve_until(
    server: Any,
    serve_context: AsyncContextManager[Any],
    event_queue: Any,
    timeout: float,
    health_url: Optional[str],
    stop: threading.Event,
) -> None:
    try:
        task = await run_uvicorn_asyncio(server, serve_context, timeout, health_url, wait_for_serve=False)
    except Exception as exc:  # noqa: BLE001 - reported to the launcher
        event_queue.put(_startup_failure(exc, timeout))
        return
    event_queue.put(ChildEvent(kind="ready"))
    while not stop.is_set() and not task.done():  # noqa: ASYNC110 - a thread event: polled
        await asyncio.sleep(POLL_SECONDS)
    await shutdown_uvicorn_server(server, task)


def run_uvicorn_thread(
    uvicorn_server: Any,
    serve_context: AsyncContextManager[Any],
    event_queue: queue.Queue[ChildEvent],
    stop_event: threading.Event,
    timeout: float = 60.0,
    health_url: Optional[str] = None,
) -> None:
    """Thread target: serve in a new event loop, report one :class:`ChildEvent`, serve until ``stop_event``."""
    asyncio.run(_serve_until(uvicorn_server, serve_context, event_queue, timeout, health_url, stop_event))


def run_uvicorn_subprocess(
    uvicorn_server: Any,
    serve_context: AsyncContextManager[Any],
    event_queue: Any,
    timeout: float = 60.0,
    health_url: Optional[str] = None,
) -> None:
    """Process target (``fork``): like :func:`run_uvicorn_thread`, stopped by SIGTERM or SIGINT; exits with 0."""
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()
        uvicorn_server.should_exit = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    uvicorn_server.capture_signals = _no_capture  # uvicorn would re-raise the signal after serving (exit -15)
    asyncio.run(_serve_until(uvicorn_server, serve_context, event_queue, timeout, health_url, stop))
    flush = getattr(event_queue, "close", None)
    if flush is not None:  # a multiprocessing queue: make sure the event left before this process ends
        flush()
        event_queue.join_thread()


class _NoCapture:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: Any) -> None:
        return None


def _no_capture() -> _NoCapture:
    return _NoCapture()
