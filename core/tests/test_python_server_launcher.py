"""Upstream v0.3's PythonServerLauncher and its serving helpers: real servers on 127.0.0.1, in this event loop, a
thread, and a forked child process."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import queue
import signal
import socket
import threading
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Coroutine, Dict, List, TypeVar

import pytest
from agentlightning.utils.server_launcher import (
    ChildEvent,
    PythonServerLauncher,
    PythonServerLauncherArgs,
    free_port,
    noop_context,
    run_uvicorn_asyncio,
    run_uvicorn_subprocess,
    run_uvicorn_thread,
    shutdown_uvicorn_server,
)

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
starlette_apps = pytest.importorskip("starlette.applications")

pytestmark = pytest.mark.network

T = TypeVar("T")


def _app(healthy: bool = True) -> Any:
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def health(request: Any) -> Any:
        return JSONResponse({"ok": True}) if healthy else Response(status_code=503)

    async def root(request: Any) -> Any:
        return JSONResponse({"pid": os.getpid()})

    return starlette_apps.Starlette(routes=[Route("/health", health), Route("/", root)])


def _server(app: Any, port: int) -> Any:
    return uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _get(url: str) -> Any:
    return httpx.get(url, timeout=5).json()


@pytest.mark.parametrize("mode", ["asyncio", "thread", "mp"])
def test_launcher_serves_in_each_mode_reloads_on_the_same_port_and_stops(mode: str) -> None:
    port = free_port()
    args = PythonServerLauncherArgs(host="127.0.0.1", port=port, launch_mode=mode, healthcheck_url="health")  # type: ignore[arg-type]
    launcher = PythonServerLauncher(_app(), args)
    assert launcher.health_url == f"http://127.0.0.1:{port}/health"  # the leading slash is added

    async def scenario() -> List[int]:
        pids = []
        await launcher.start()
        assert launcher.is_running()
        with pytest.raises(RuntimeError, match="already running"):
            await launcher.start()
        pids.append((await asyncio.to_thread(_get, launcher.access_endpoint + "/"))["pid"])
        await launcher.reload()
        assert launcher.is_running() and launcher.endpoint == f"http://127.0.0.1:{port}"
        pids.append((await asyncio.to_thread(_get, launcher.access_endpoint + "/"))["pid"])
        await launcher.stop()
        await launcher.stop()  # idempotent
        return pids

    pids = _run(scenario())
    assert not launcher.is_running() and _port_is_free(port)
    if mode == "mp":
        assert os.getpid() not in pids and pids[0] != pids[1]  # a new child process after the reload
    else:
        assert pids == [os.getpid(), os.getpid()]


@pytest.mark.parametrize("mode", ["asyncio", "thread", "mp"])
def test_an_unhealthy_server_fails_start_and_is_stopped(mode: str) -> None:
    port = free_port()
    args = PythonServerLauncherArgs(
        host="127.0.0.1",
        port=port,
        launch_mode=mode,
        healthcheck_url="/health",
        startup_timeout=1.0,  # type: ignore[arg-type]
    )
    launcher = PythonServerLauncher(_app(healthy=False), args)
    with pytest.raises(RuntimeError, match="Server is not healthy"):
        _run(launcher.start())
    assert not launcher.is_running() and _port_is_free(port)


def test_a_taken_port_fails_start_with_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        for mode in ("asyncio", "thread"):
            args = PythonServerLauncherArgs(host="127.0.0.1", port=port, launch_mode=mode, startup_timeout=2.0)  # type: ignore[arg-type]
            with pytest.raises(RuntimeError, match="failed to serve"):
                _run(PythonServerLauncher(_app(), args).start())


def test_run_forever_serves_until_cancelled_then_stops() -> None:
    port = free_port()
    launcher = PythonServerLauncher(_app(), PythonServerLauncherArgs(host="127.0.0.1", port=port, launch_mode="thread"))

    async def scenario() -> None:
        task = asyncio.create_task(launcher.run_forever())
        while not launcher.is_running():  # noqa: ASYNC110 - the launcher has no event to await
            await asyncio.sleep(0.02)
        assert (await asyncio.to_thread(_get, launcher.endpoint + "/"))["pid"] == os.getpid()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    _run(scenario())
    assert not launcher.is_running() and _port_is_free(port)


def test_defaults_bind_loopback_pick_a_port_once_and_pickle_without_the_server() -> None:
    launcher = PythonServerLauncher(_app(), PythonServerLauncherArgs())
    assert launcher.endpoint.startswith("http://127.0.0.1:") and launcher.health_url is None
    copy = pickle.loads(pickle.dumps(PythonServerLauncher(None, PythonServerLauncherArgs(port=1234))))
    assert copy.endpoint == "http://127.0.0.1:1234" and not copy.is_running()
    wide = PythonServerLauncher(_app(), PythonServerLauncherArgs(host="0.0.0.0", port=80, access_host="10.1.2.3"))  # noqa: S104
    assert (wide.endpoint, wide.access_endpoint) == ("http://0.0.0.0:80", "http://10.1.2.3:80")
    with pytest.raises(ValueError, match="launch_mode"):
        _run(PythonServerLauncher(_app(), PythonServerLauncherArgs(launch_mode="fork")).start())  # type: ignore[arg-type]


def test_run_uvicorn_asyncio_enters_the_serve_context_and_can_leave_an_unhealthy_server_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flags: Dict[str, bool] = {}

    @asynccontextmanager
    async def context() -> AsyncIterator[None]:
        flags["entered"] = True
        yield
        flags["exited"] = True

    async def scenario() -> None:
        port = free_port()
        server = _server(_app(), port)
        task = await run_uvicorn_asyncio(server, context(), 10.0, f"http://127.0.0.1:{port}/health", False)
        assert server.started and not task.done() and flags == {"entered": True}
        await shutdown_uvicorn_server(server, task)
        sick_port = free_port()
        sick = _server(_app(healthy=False), sick_port)
        task = await run_uvicorn_asyncio(
            sick, noop_context(), 0.5, f"http://127.0.0.1:{sick_port}/health", False, kill_unhealthy_server=False
        )
        assert not task.done() and (await asyncio.to_thread(_get, f"http://127.0.0.1:{sick_port}/"))
        await shutdown_uvicorn_server(sick, task)

    _run(scenario())
    assert flags == {"entered": True, "exited": True}
    assert "left running" in caplog.text


def test_run_uvicorn_thread_reports_ready_then_stops_on_its_event() -> None:
    port = free_port()
    events: queue.Queue[ChildEvent] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=run_uvicorn_thread, args=(_server(_app(), port), noop_context(), events, stop))
    thread.start()
    assert events.get(timeout=10).kind == "ready"
    assert _get(f"http://127.0.0.1:{port}/")["pid"] == os.getpid()
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and _port_is_free(port)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_uvicorn_subprocess_reports_ready_and_exits_cleanly_on_a_signal(signum: int) -> None:
    ctx = multiprocessing.get_context("fork")
    events: Any = ctx.Queue()
    port = free_port()
    process = ctx.Process(target=run_uvicorn_subprocess, args=(_server(_app(), port), noop_context(), events, 10.0))
    process.start()
    try:
        assert events.get(timeout=20).kind == "ready"
        assert _get(f"http://127.0.0.1:{port}/")["pid"] == process.pid
        os.kill(process.pid, signum)
        process.join(20)
    finally:
        if process.is_alive():
            process.kill()
            process.join(5)
    assert process.exitcode == 0 and _port_is_free(port)


def test_run_uvicorn_subprocess_reports_a_bind_failure() -> None:
    ctx = multiprocessing.get_context("fork")
    events: Any = ctx.Queue()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        process = ctx.Process(target=run_uvicorn_subprocess, args=(_server(_app(), port), noop_context(), events, 3.0))
        process.start()
        event = events.get(timeout=20)
        process.join(20)
    assert event.kind == "error" and "did not start up" in (event.message or "") and process.exitcode == 0
