"""``PythonServerLauncher``: upstream v0.3's launcher of an ASGI app, in the current event loop, a thread, or a child
process (one uvicorn, or a gunicorn master with ``n_workers`` uvicorn workers).

Its methods are coroutines, as upstream's are. Servers of this project start through
:class:`~agentlightning.utils.server_launcher.BackgroundServer`; this class is for code written against upstream.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import queue
import threading
from typing import TYPE_CHECKING, Any, AsyncContextManager, Dict, Optional

from .serving import (
    ChildEvent,
    noop_context,
    run_uvicorn_asyncio,
    run_uvicorn_subprocess,
    run_uvicorn_thread,
    shutdown_uvicorn_server,
)

if TYPE_CHECKING:
    from .server_launcher import PythonServerLauncherArgs

__all__ = ["PythonServerLauncher"]

logger = logging.getLogger(__name__)

_KILL_WAIT_SECONDS = 5.0


class PythonServerLauncher:
    """Serves ``app`` as ``args`` says (:class:`~agentlightning.utils.server_launcher.PythonServerLauncherArgs`).

    ``launch_mode``: ``"asyncio"`` serves in the event loop that calls :meth:`start`; ``"thread"`` in a thread with
    its own loop; ``"mp"`` in a forked child process (Linux/macOS), with gunicorn when ``n_workers > 1`` (needs
    ``gunicorn`` and ``uvicorn-worker``). :meth:`start` returns once the server listens and, with
    ``healthcheck_url``, answers it with 200; otherwise it raises ``RuntimeError`` saying why.

    Unlike upstream, a missing ``host`` binds 127.0.0.1 (not every interface). A missing ``port`` is chosen when the
    launcher is made, so :attr:`endpoint` is known before the server starts and stays the same across reloads.

    Args:
        app: the ASGI application (e.g. FastAPI).
        args: how to serve it.
        serve_context: an async context manager entered around serving (in the serving loop, thread or process).
    """

    def __init__(
        self, app: Any, args: PythonServerLauncherArgs, serve_context: Optional[AsyncContextManager[Any]] = None
    ) -> None:
        from .server_launcher import access_host, free_port

        self.app = app
        self.args = args
        self.serve_context = serve_context
        self._host: str = args.host if args.host is not None else "127.0.0.1"
        self._port: int = args.port if args.port is not None else free_port(self._host)
        self._access_host: str = args.access_host or access_host(self._host, outbound=True)
        self._reset()

    def _reset(self) -> None:
        self._running = False
        self._server: Any = None
        self._task: Optional[asyncio.Task[None]] = None
        self._thread: Optional[threading.Thread] = None
        self._stop_event: Optional[threading.Event] = None
        self._process: Any = None
        self._events: Any = None

    def __getstate__(self) -> Dict[str, Any]:
        """Pickles what the launcher was made with, never a running server."""
        return {
            "app": self.app, "args": self.args, "serve_context": self.serve_context,
            "host": self._host, "port": self._port, "access_host": self._access_host,
        }  # fmt: skip

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.app, self.args, self.serve_context = state["app"], state["args"], state["serve_context"]
        self._host, self._port, self._access_host = state["host"], state["port"], state["access_host"]
        self._reset()

    # -- addresses ---------------------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``http://host:port`` with the host it binds (``0.0.0.0`` stays so)."""
        return f"http://{self._host}:{self._port}"

    @property
    def access_endpoint(self) -> str:
        """``http://host:port`` a client reaches: ``access_host``, or this machine's address for ``0.0.0.0``."""
        return f"http://{self._access_host}:{self._port}"

    @property
    def health_url(self) -> Optional[str]:
        """The absolute health-check URL (``healthcheck_url`` under :attr:`access_endpoint`), or None."""
        path = self.args.healthcheck_url
        if not path:
            return None
        return f"{self.access_endpoint}/{path.lstrip('/')}"

    def is_running(self) -> bool:
        """Whether the server was started and has not been stopped."""
        return self._running

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving; returns once the server is ready. Raises ``RuntimeError`` (already running, or why it
        did not start) or ``ValueError`` for an unknown ``launch_mode``."""
        if self._running:
            raise RuntimeError(f"the server at {self.endpoint} is already running; stop it first")
        mode = self.args.launch_mode
        if mode == "asyncio":
            await self._start_in_loop()
        elif mode == "thread":
            await self._start_in_thread()
        elif mode == "mp":
            await self._start_in_process()
        else:
            raise ValueError(f"launch_mode must be 'asyncio', 'thread' or 'mp', got {mode!r}")
        self._running = True
        logger.info("Serving %s at %s (%s)", type(self.app).__name__, self.endpoint, mode)

    async def stop(self) -> None:
        """Stop serving (gracefully, then forcibly after the configured join timeout). Idempotent."""
        try:
            if self._task is not None:
                await shutdown_uvicorn_server(self._server, self._task, timeout=self.args.thread_join_timeout)
            if self._thread is not None:
                await self._stop_thread(self._thread)
            if self._process is not None:
                await self._stop_process(self._process)
        finally:
            self._reset()

    async def reload(self) -> None:
        """Stop (if running) and start again, on the same port."""
        if self._running:
            await self.stop()
        await self.start()

    async def run_forever(self) -> None:
        """Start, then wait until the server ends by itself; cancelling this stops the server first."""
        await self.start()
        try:
            while self._serving():  # noqa: ASYNC110 - a thread or a process: polled
                await asyncio.sleep(0.2)
        except (asyncio.CancelledError, KeyboardInterrupt):
            logger.info("Stopping the server at %s (cancelled)", self.endpoint)
            await asyncio.shield(self.stop())
            raise
        await self.stop()

    def _serving(self) -> bool:
        if self._task is not None:
            return not self._task.done()
        if self._thread is not None:
            return self._thread.is_alive()
        return self._process is not None and self._process.is_alive()

    # -- modes -------------------------------------------------------------------------------------------------------

    def _uvicorn_server(self) -> Any:
        import uvicorn

        config = uvicorn.Config(
            self.app,
            host=self._host,
            port=self._port,
            log_level=self.args.log_level,
            access_log=self.args.access_log,
            loop="asyncio",
            timeout_keep_alive=self.args.timeout_keep_alive,
        )
        return uvicorn.Server(config)

    def _context(self) -> AsyncContextManager[Any]:
        return self.serve_context if self.serve_context is not None else noop_context()

    async def _start_in_loop(self) -> None:
        self._server = self._uvicorn_server()
        self._task = await run_uvicorn_asyncio(
            self._server, self._context(), timeout=self.args.startup_timeout, health_url=self.health_url,
            wait_for_serve=False, kill_unhealthy_server=self.args.kill_unhealthy_server,
        )  # fmt: skip

    async def _start_in_thread(self) -> None:
        events: queue.Queue[ChildEvent] = queue.Queue()
        stop = threading.Event()
        thread = threading.Thread(
            target=run_uvicorn_thread,
            args=(self._uvicorn_server(), self._context(), events, stop, self.args.startup_timeout, self.health_url),
            name=f"agl-server-{self._port}",
            daemon=True,
        )
        self._thread, self._stop_event = thread, stop
        thread.start()
        await self._await_ready(events, thread.is_alive, "server thread")

    async def _start_in_process(self) -> None:
        try:
            ctx = multiprocessing.get_context("fork")
        except ValueError as exc:
            raise RuntimeError("launch_mode='mp' needs the 'fork' start method; use 'thread' here") from exc
        events = ctx.Queue()
        if self.args.n_workers > 1:
            from .gunicorn_serving import gunicorn_app_class, run_gunicorn

            options = {
                "bind": f"{self._host}:{self._port}",
                "workers": int(self.args.n_workers),
                "worker_class": "uvicorn_worker.UvicornWorker",
                "loglevel": logging.getLevelName(self.args.log_level).lower(),
                "accesslog": "-" if self.args.access_log else None,
                "errorlog": "-",
                "preload_app": True,
                "graceful_timeout": max(1, int(self.args.process_join_timeout / 2)),
            }
            target: Any = run_gunicorn
            target_args: tuple[Any, ...] = (gunicorn_app_class()(self.app, options),)
            daemon = False  # a gunicorn master has children of its own
        else:
            target, target_args, daemon = run_uvicorn_subprocess, (self._uvicorn_server(),), True
        process = ctx.Process(
            target=target,
            args=(*target_args, self._context(), events, self.args.startup_timeout, self.health_url),
            name=f"agl-server-{self._port}",
            daemon=daemon,
        )
        self._process, self._events = process, events
        process.start()
        await self._await_ready(events, process.is_alive, "server process")

    async def _await_ready(self, events: Any, alive: Any, what: str) -> None:
        """Wait for the serving thread's or process's first event; stop it and raise if it is not ``ready``."""
        try:
            event: ChildEvent = await asyncio.to_thread(events.get, True, self.args.startup_timeout * 2)
        except queue.Empty:
            still = alive()
            await self.stop()
            state = "did not report" if still else "exited without reporting"
            raise RuntimeError(f"the {what} {state} within {self.args.startup_timeout * 2} seconds") from None
        if event.kind == "error":
            logger.error("The %s failed to start (%s): %s\n%s", what, event.exc_type, event.message, event.traceback)
            await self.stop()
            raise RuntimeError(event.message)

    async def _stop_thread(self, thread: threading.Thread) -> None:
        if self._stop_event is not None:
            self._stop_event.set()
        await asyncio.to_thread(thread.join, self.args.thread_join_timeout)
        if thread.is_alive():
            raise RuntimeError(f"the server thread did not stop within {self.args.thread_join_timeout} seconds")

    async def _stop_process(self, process: Any) -> None:
        if process.is_alive():
            process.terminate()
            await asyncio.to_thread(process.join, self.args.process_join_timeout)
        if process.is_alive():
            logger.warning("The server process did not stop after SIGTERM; killing it")
            process.kill()
            await asyncio.to_thread(process.join, _KILL_WAIT_SECONDS)
        if self._events is not None:
            self._events.close()
            self._events.join_thread()
        if process.is_alive():
            raise RuntimeError("the server process did not stop after SIGTERM and SIGKILL")

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<PythonServerLauncher {self.endpoint} {self.args.launch_mode} {state}>"
