"""Serve an ASGI app with uvicorn: in a background thread (:class:`BackgroundServer`) or in the foreground
(:func:`run_server`), on a socket from :func:`bind_socket`.

The store server, the LLM proxy and the policy server all start this way::

    with BackgroundServer(app, port=0, name="my server") as server:   # 127.0.0.1, a free port
        httpx.get(server.endpoint + "/health")

``start()`` returns once uvicorn serves (the app's lifespan startup has run), or raises
:class:`ServerStartupError` naming what went wrong: the address is taken, the lifespan or ``serve_context`` failed,
or startup took too long. uvicorn is imported only when a server starts (the core does not depend on it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from typing import Any, AsyncContextManager, Callable, List, Literal, Optional, Sequence

import attrs

# upstream v0.3's launcher and its serving helpers (uvicorn and gunicorn are imported only when a server starts)
from .gunicorn_serving import run_gunicorn
from .python_launcher import PythonServerLauncher
from .serving import (
    ChildEvent,
    noop_context,
    run_uvicorn_asyncio,
    run_uvicorn_subprocess,
    run_uvicorn_thread,
    shutdown_uvicorn_server,
)

__all__ = [
    "LaunchMode",
    "PythonServerLauncher",
    "PythonServerLauncherArgs",
    "BackgroundServer",
    "ServerStartupError",
    "access_host",
    "bind_socket",
    "free_port",
    "is_loopback",
    "run_server",
    "uvicorn_config",
    "wait_until_healthy",
    "ChildEvent",
    "noop_context",
    "run_gunicorn",
    "run_uvicorn_asyncio",
    "run_uvicorn_subprocess",
    "run_uvicorn_thread",
    "shutdown_uvicorn_server",
]

logger = logging.getLogger(__name__)

LaunchMode = Literal["asyncio", "thread", "mp"]
"""Upstream v0.3's launch modes: in the current event loop, in a thread, in a child process. Servers of this project
run in a thread (``"asyncio"`` maps to it) or a child process (``"mp"``); :class:`PythonServerLauncher` has all
three."""


@attrs.define
class PythonServerLauncherArgs:
    """Upstream v0.3's server launch options (``LightningStoreServer(launcher_args=...)``, ``LLMProxy``)."""

    port: Optional[int] = None
    host: Optional[str] = None
    access_host: Optional[str] = None
    launch_mode: LaunchMode = "asyncio"
    n_workers: int = 1
    healthcheck_url: Optional[str] = None
    log_level: int = logging.INFO
    access_log: bool = False
    startup_timeout: float = 60.0
    kill_unhealthy_server: bool = True
    thread_join_timeout: float = 10.0
    process_join_timeout: float = 10.0
    timeout_keep_alive: int = 30


def __getattr__(name: str) -> Any:
    if name == "GunicornApp":  # upstream's gunicorn application class: made (importing gunicorn) on first use
        from .gunicorn_serving import gunicorn_app_class

        return gunicorn_app_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ServerStartupError(RuntimeError):
    """The server did not start serving: its address is taken, its startup failed, or it took too long."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def access_host(host: str, *, outbound: bool = False) -> str:
    """The host clients use to reach a server bound to ``host`` (IPv6 in brackets, ready for a URL).

    A server bound to every interface (``""``, ``0.0.0.0``, ``::``) is reached on loopback, or, with ``outbound``,
    on the IPv4 address this machine uses towards other machines (for endpoints published to them)."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - compares, does not bind
        if outbound:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    probe.connect(("10.255.255.255", 1))  # UDP connect sends nothing; it only picks the route
                    return str(probe.getsockname()[0])
            except OSError:
                pass
        return "[::1]" if host == "::" and not outbound else "127.0.0.1"
    host = host.strip("[]")
    return f"[{host}]" if ":" in host else host


def bind_socket(host: str = "127.0.0.1", port: int = 0, *, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one; read it with ``getsockname()[1]``).

    Made with ``IPPROTO_TCP`` so that asyncio sets TCP_NODELAY on accepted connections (a socket with protocol 0, as
    uvicorn makes, leaves Nagle on, and small answers then wait ~40 ms for delayed ACKs). Inheritable, so that
    worker processes can serve it. Raises :class:`OSError` naming the address when it cannot listen there."""
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bare, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        reason = str(exc.strerror or exc)
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {reason[:1].lower()}{reason[1:]}") from exc
    sock.set_inheritable(True)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port free at the time of the call (for servers started elsewhere; prefer ``port=0`` where possible)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host.strip("[]"), 0))
        return int(sock.getsockname()[1])


def uvicorn_config(app: Any, **options: Any) -> Any:
    """``uvicorn.Config`` for ``app`` with quiet defaults (``log_level="warning"``, no access log)."""
    import uvicorn

    settings = {"log_level": "warning", "access_log": False, **options}
    return uvicorn.Config(app, **settings)


def run_server(app: Any, sock: socket.socket, **options: Any) -> None:
    """Serve ``app`` on ``sock`` in this thread until SIGINT/SIGTERM (uvicorn's graceful shutdown)."""
    import uvicorn

    uvicorn.Server(uvicorn_config(app, **options)).run(sockets=[sock])


def wait_until_healthy(
    url: str, *, timeout: float, exited: Callable[[], Optional[str]] = lambda: None, name: str = "server"
) -> None:
    """Poll ``GET url`` until it answers 200, for a server started in another process.

    ``exited()`` returns why the server is gone (e.g. ``"exited with code 1"``), or None while it runs. Raises
    :class:`ServerStartupError` with the last health check's outcome when it is gone or ``timeout`` passes.
    Proxy settings of the environment are ignored (the server is local)."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        gone = exited()
        if gone:
            raise ServerStartupError(f"{name} {gone} while starting (last health check: {last})")
        try:
            with opener.open(url, timeout=max(0.1, min(1.0, deadline - time.monotonic()))) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise ServerStartupError(f"{name} did not start up within {timeout}s (last health check: {last})")
        time.sleep(0.05)


class _LifespanWatch:
    """ASGI wrapper that remembers why the app's lifespan startup failed (uvicorn only logs it)."""

    __slots__ = ("app", "error")

    def __init__(self, app: Any) -> None:
        self.app = app
        self.error: Optional[BaseException] = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watched_send(message: Any) -> None:
            if message.get("type") == "lifespan.startup.failed" and self.error is None:
                self.error = RuntimeError(message.get("message") or "lifespan startup failed")
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except BaseException as exc:
            self.error = exc
            raise


class BackgroundServer:
    """``app`` served by uvicorn on its own asyncio loop in a daemon thread.

    Args:
        app: an ASGI application.
        host: the interface to bind; 127.0.0.1 unless given.
        port: the port; 0 picks a free one, and :attr:`port` tells which once started.
        name: how errors and the thread name the server.
        startup_timeout: seconds :meth:`start` waits for uvicorn to serve.
        serve_context: a zero-argument callable returning an async context manager, entered in the serving loop
            before uvicorn starts and left after it stops (open what the app needs there; its failure fails start).
        sock: an already bound listening socket to serve instead of binding ``host:port``.
        uvicorn_options: more ``uvicorn.Config`` options (``lifespan="off"``, ``http=...``, ``timeout_keep_alive``).

    Use as a (sync or async) context manager, or call :meth:`start` / :meth:`stop` (or :meth:`astart` /
    :meth:`astop` from async code). ``stop`` is idempotent; a stopped server may be started again (same port when
    one was chosen before).
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "server",
        startup_timeout: float = 30.0,
        serve_context: Optional[Callable[[], AsyncContextManager[Any]]] = None,
        sock: Optional[socket.socket] = None,
        **uvicorn_options: Any,
    ) -> None:
        self.app = app
        self.host = host
        self.port = int(sock.getsockname()[1]) if sock is not None else port
        self.name = name
        self.startup_timeout = startup_timeout
        self.serve_context = serve_context
        self.uvicorn_options = uvicorn_options
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        """The serving event loop while the server runs."""
        self._sock = sock
        self._thread: Optional[threading.Thread] = None
        self._server: Any = None

    @property
    def endpoint(self) -> str:
        """``http://host:port`` as a client on this machine reaches the server."""
        return f"http://{access_host(self.host)}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> BackgroundServer:
        """Bind, start serving in a thread, and return once uvicorn serves. Raises :class:`ServerStartupError`."""
        if self._thread is not None:
            if self._thread.is_alive():
                raise RuntimeError(f"{self.name} is already running at {self.endpoint}")
            self.stop()
        import uvicorn

        sock, self._sock = self._sock, None
        if sock is None:
            try:
                sock = bind_socket(self.host, self.port)
            except OSError as exc:
                raise self._startup_error(str(exc.strerror or exc)) from exc
        self.port = int(sock.getsockname()[1])
        watch = _LifespanWatch(self.app)
        started = threading.Event()
        failures: List[BaseException] = []

        class _Server(uvicorn.Server):
            async def startup(self, sockets: Optional[Sequence[socket.socket]] = None) -> None:
                await super().startup(sockets=sockets)  # type: ignore[arg-type]
                if self.started:
                    started.set()

        server = _Server(uvicorn_config(watch, **self.uvicorn_options))

        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            if self.serve_context is None:
                await server.serve(sockets=[sock])
                return
            async with self.serve_context():
                await server.serve(sockets=[sock])

        def target() -> None:
            try:
                asyncio.run(serve())
            except BaseException as exc:  # noqa: BLE001 - reported by start()
                failures.append(exc)
            finally:
                sock.close()
                self.loop = None
                started.set()

        self._server = server
        self._thread = threading.Thread(target=target, name=f"agl-{self.name}-{self.port}", daemon=True)
        self._thread.start()
        if started.wait(self.startup_timeout) and server.started:
            return self
        error = watch.error or (failures[0] if failures else None)
        self.stop()
        if error is None:
            raise ServerStartupError(f"{self.name} did not start up within {self.startup_timeout}s")
        raise self._startup_error(f"{type(error).__name__}: {error}") from error

    def _startup_error(self, reason: str) -> ServerStartupError:
        """The error :meth:`start` raises (and logs), worded as upstream's launcher words it."""
        message = f"{self.name} did not start up within {self.startup_timeout}s: {reason}"
        logger.error("%s", message)
        return ServerStartupError(message)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: open requests get ``timeout`` seconds to finish, then connections are closed. Idempotent."""
        thread, server = self._thread, self._server
        if thread is None:
            return
        server.should_exit = True
        if thread is threading.current_thread():
            return  # called from the app itself: uvicorn exits after this request
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("%s did not stop within %.0fs; its daemon thread is left behind", self.name, timeout)
        self._thread = self._server = None

    async def astart(self) -> BackgroundServer:
        """:meth:`start` without blocking the calling event loop (asyncio or trio)."""
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self.start)

    async def astop(self, timeout: float = 10.0) -> None:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.stop, timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    async def __aenter__(self) -> BackgroundServer:
        return await self.astart()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.astop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<BackgroundServer {self.name} {self.endpoint} {state}>"
