"""``LightningStoreServer``: serve a store over HTTP from a background thread or a child process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import warnings
from typing import Any, Awaitable, Callable, Dict, Generator, Optional, Sequence, TypeVar

from agentlightning.store.base import STORE_CALLS, LightningStore, LightningStoreCapabilities, LightningStoreStatistics
from agentlightning.utils.awaitable import Completed

from . import wire
from .app import ServerSettings, StoreSource, create_app
from .serve import access_host, check_security, check_workers, free_port

__all__ = ["LightningStoreServer"]

T = TypeVar("T")


_UPSTREAM_LAUNCH_MODES = {"asyncio": "thread", "mp": "subprocess"}


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"LightningStoreServer({old}=) is upstream v0.3's name: use {new}=", DeprecationWarning, stacklevel=4)


class LightningStoreServer(LightningStore):
    """Serves ``store`` (an instance, a URL, or a factory called in the server's own event loop) over HTTP.

    ``launch_mode="thread"`` runs uvicorn in a daemon thread of this process (any store source);
    ``"subprocess"`` runs ``python -m agentlightning_server.serve`` (a store URL only; needed for ``workers > 1``).
    ``port=0`` picks a free port; :attr:`endpoint` tells which. Use as a (sync or async) context manager, or call
    :meth:`start` and :meth:`stop`. ``app``: serve this ASGI app instead of one built from ``store`` (thread mode).

    As in upstream v0.3 the server is itself a :class:`LightningStore`: its store methods call the store it serves
    (in this process; through its own HTTP client when ``store`` is a URL or a factory). ``start()`` and ``stop()``
    may be awaited (``await server.start()``) or called plainly. Upstream's arguments are accepted:
    ``cors_allow_origins`` (``cors_origins``), ``n_workers`` (``workers``), ``launch_mode="asyncio"``/``"mp"``
    (``"thread"``/``"subprocess"``), ``launcher_args`` and ``tracker`` (a metrics backend, kept as ``tracker``).
    """

    def __init__(
        self,
        store: StoreSource,
        host: Optional[str] = "127.0.0.1",
        port: Optional[int] = 4747,
        *,
        token: Optional[str] = None,
        workers: int = 1,
        launch_mode: Optional[str] = None,
        cors_origins: Sequence[str] = (),
        max_body_bytes: int = 32 * 1024 * 1024,
        request_timeout: float = 60.0,
        max_wait_seconds: float = 60.0,
        startup_timeout: float = 30.0,
        log_level: str = "warning",
        app: Any = None,
        cors_allow_origins: Optional[Sequence[str]] = None,
        n_workers: Optional[int] = None,
        launcher_args: Any = None,
        tracker: Any = None,
    ) -> None:
        if launcher_args is not None:
            if launch_mode is not None:
                raise ValueError("pass launcher_args or launch_mode, not both")
            host = launcher_args.host if launcher_args.host is not None else host
            port = launcher_args.port if launcher_args.port is not None else port
            launch_mode = launcher_args.launch_mode
            workers = launcher_args.n_workers
            startup_timeout = launcher_args.startup_timeout
        if cors_allow_origins is not None:
            _deprecated("cors_allow_origins", "cors_origins")
            cors_origins = tuple(cors_origins) + tuple(cors_allow_origins)
        if n_workers is not None:
            _deprecated("n_workers", "workers")
            workers = n_workers
        if launch_mode in _UPSTREAM_LAUNCH_MODES:
            launch_mode = _UPSTREAM_LAUNCH_MODES[launch_mode]
        host = "127.0.0.1" if host is None else host
        port = 4747 if port is None else port
        self.tracker = tracker
        self._client: Any = None
        token = token or os.environ.get(wire.TOKEN_ENV) or None
        check_security(host, token)
        mode = launch_mode or ("subprocess" if workers > 1 else "thread")
        if mode not in ("thread", "subprocess"):
            raise ValueError(f"launch_mode must be 'thread' or 'subprocess', got {mode!r}")
        if mode == "subprocess" and not isinstance(store, str):
            raise ValueError("launch_mode='subprocess' needs the store as a URL (e.g. 'sqlite:///run.db')")
        if workers > 1:
            if mode != "subprocess":
                raise ValueError("workers > 1 needs launch_mode='subprocess'")
            check_workers(str(store), workers)
        if isinstance(store, LightningStore) and not store.capabilities.get("thread_safe"):
            warnings.warn(
                f"{type(store).__name__} is not thread-safe; the server calls it from its own thread, so do not use "
                "it from this thread while the server runs",
                stacklevel=2,
            )
        self.store = store
        self._app = app
        self.host, self.port, self.workers, self.launch_mode = host, port, workers, mode
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.settings = ServerSettings(
            token=token,
            max_body_bytes=max_body_bytes,
            request_timeout=request_timeout,
            max_wait_seconds=max_wait_seconds,
            cors_origins=tuple(cors_origins),
        )
        self._endpoint: Optional[str] = None
        self._launcher: Any = None
        self._process: Optional[subprocess.Popen[str]] = None

    # -- addresses ---------------------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``http://host:port`` as a client on this machine reaches it (known once started)."""
        if self._endpoint is None:
            if self.port == 0:
                raise RuntimeError("the server picks its port when it starts: call start() first")
            return f"http://{access_host(self.host)}:{self.port}"
        return self._endpoint

    @property
    def web_app_urls(self) -> Dict[str, str]:
        """name -> URL of the web apps this server serves (a dashboard, when its plugin is installed)."""
        if self._app is not None or not self.settings.web_apps:
            return {}
        from .web_apps import web_app_urls

        return web_app_urls(self.endpoint)

    def otlp_traces_endpoint(self) -> str:
        return self.endpoint + wire.OTLP_TRACES_PATH

    @property
    def token(self) -> Optional[str]:
        return self.settings.token

    def client(self, **kwargs: Any) -> Any:
        """A :class:`LightningStoreClient` for this server (with its token)."""
        from .client import LightningStoreClient

        return LightningStoreClient(self.endpoint, token=self.settings.token, **kwargs)

    @property
    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self._launcher is not None and self._launcher.running

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    def start(self) -> LightningStoreServer:
        if self.running:
            return self
        if self.launch_mode == "thread":
            self._start_thread()
        else:
            self._start_process()
        return self

    def _start_thread(self) -> None:
        from agentlightning.utils.server_launcher import BackgroundServer

        from .serve import SERVER_OPTIONS

        app = self._app if self._app is not None else create_app(self.store, self.settings)
        launcher = BackgroundServer(
            app,
            host=self.host,
            port=self.port,
            name="the store server",
            startup_timeout=self.startup_timeout,
            log_level=self.log_level,
            **{**SERVER_OPTIONS, **self.settings.http_options()},
        )
        self._launcher = launcher.start()
        self._endpoint = launcher.endpoint

    def _start_process(self) -> None:
        port = self.port or free_port(self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1")  # noqa: S104
        cmd = [
            sys.executable, "-m", "agentlightning_server.serve",
            "--store", str(self.store), "--host", self.host, "--port", str(port),
            "--workers", str(self.workers), "--log-level", self.log_level,
            "--max-body-bytes", str(self.settings.max_body_bytes),
            "--request-timeout", str(self.settings.request_timeout),
        ]  # fmt: skip
        for origin in self.settings.cors_origins:
            cmd += ["--cors-origin", origin]
        env = dict(os.environ)
        if self.settings.token:
            env[wire.TOKEN_ENV] = self.settings.token
        self._process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, text=True)
        self._endpoint = f"http://{access_host(self.host)}:{port}"
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        from agentlightning.utils.server_launcher import wait_until_healthy

        process = self._process
        assert process is not None

        def exited() -> Optional[str]:
            code = process.poll()
            return None if code is None else f"exited with code {code}"

        try:
            url = self.endpoint + wire.API_PREFIX + "/health"
            wait_until_healthy(url, timeout=self.startup_timeout, exited=exited, name="the store server")
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> Completed[None]:
        """Stop serving (graceful, then forced). Safe to call twice. The result may be awaited (upstream's form)."""
        self._stop(timeout)
        return Completed(None)

    def _stop(self, timeout: float) -> None:
        if self._launcher is not None:
            self._launcher.stop(timeout)
            self._launcher = None
        if self._process is not None:
            process = self._process
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout)
            if process.stdout is not None:
                process.stdout.close()
            self._process = None

    @property
    def pid(self) -> Optional[int]:
        """The server's process id (this process in thread mode)."""
        return self._process.pid if self._process is not None else os.getpid()

    def run_in_server_loop(self, fn: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Run a coroutine function in the server thread's event loop (thread mode) and return its result."""
        loop = self._launcher.loop if self._launcher is not None else None
        if loop is None:
            raise RuntimeError("run_in_server_loop needs a running thread-mode server")

        async def call() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)

    def __await__(self) -> Generator[Any, None, LightningStoreServer]:
        """``await server.start()`` (upstream v0.3's form): ``start()`` has already run when it returns."""
        return self
        yield

    async def run_forever(self) -> None:
        """Start, then serve until cancelled (e.g. Ctrl-C under ``asyncio.run``); then stop."""
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.start)
        try:
            await asyncio.Event().wait()
        finally:
            await anyio.to_thread.run_sync(self._stop, 10.0)

    # -- the LightningStore it serves -------------------------------------------------------------------------------

    def _target(self) -> LightningStore:
        if isinstance(self.store, LightningStore):
            return self.store
        if self._client is None:
            self._client = self.client()
        client: LightningStore = self._client
        return client

    @property
    def capabilities(self) -> LightningStoreCapabilities:
        return LightningStoreCapabilities(thread_safe=True, async_safe=True, zero_copy=True, otlp_traces=True)

    async def statistics(self) -> LightningStoreStatistics:
        return await self._target().statistics()

    async def close(self) -> None:
        """Close the HTTP client the server's store methods use (when the store is a URL); the server keeps serving."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    def __enter__(self) -> LightningStoreServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self._stop(10.0)

    async def __aenter__(self) -> LightningStoreServer:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(self, *exc_info: Any) -> None:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self._stop, 10.0)

    def __repr__(self) -> str:
        return f"<LightningStoreServer {self._endpoint or self.host} mode={self.launch_mode} workers={self.workers}>"


def _forward(name: str) -> Callable[..., Any]:
    async def method(self: LightningStoreServer, *args: Any, **kwargs: Any) -> Any:
        return await getattr(self._target(), name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = getattr(LightningStore, name).__doc__
    return method


for _name in STORE_CALLS:
    setattr(LightningStoreServer, _name, _forward(_name))
