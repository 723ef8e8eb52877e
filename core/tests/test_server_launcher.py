"""The shared uvicorn launcher: real servers on 127.0.0.1, started and stopped in a background thread."""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from typing import Any, AsyncIterator, List

import pytest
from agentlightning.utils.server_launcher import (
    BackgroundServer,
    ServerStartupError,
    access_host,
    bind_socket,
    is_loopback,
    wait_until_healthy,
)

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
starlette_apps = pytest.importorskip("starlette.applications")

pytestmark = pytest.mark.network


def _app(lifespan: Any = None, routes: Any = ()) -> Any:
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Any) -> Any:
        return PlainTextResponse(f"hello from {threading.current_thread().name}")

    return starlette_apps.Starlette(routes=[Route("/hello", hello), *routes], lifespan=lifespan)


def test_serves_on_a_free_loopback_port_and_stops() -> None:
    with BackgroundServer(_app(), name="demo") as server:
        assert server.host == "127.0.0.1" and server.port > 0 and server.running
        assert server.endpoint == f"http://127.0.0.1:{server.port}"
        text = httpx.get(server.endpoint + "/hello").text
        assert text == f"hello from agl-demo-{server.port}"  # answered in the server's own thread
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.endpoint + "/hello")
    server.stop()  # idempotent
    server.stop()


def test_restart_keeps_the_port() -> None:
    server = BackgroundServer(_app()).start()
    port = server.port
    server.stop()
    server.start()
    try:
        assert server.port == port and httpx.get(server.endpoint + "/hello").status_code == 200
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    finally:
        server.stop()


def test_port_in_use_is_a_clear_error() -> None:
    with BackgroundServer(_app()) as first:
        second = BackgroundServer(_app(), port=first.port, name="second server")
        reason = f"cannot listen on 127.0.0.1:{first.port}: address already in use"
        with pytest.raises(ServerStartupError, match=f"second server did not start up within 30.0s: {reason}"):
            second.start()
        assert not second.running
        second.stop()
        assert httpx.get(first.endpoint + "/hello").status_code == 200  # the first one is untouched


def test_lifespan_failure_surfaces() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        raise ValueError("the database is missing")
        yield

    server = BackgroundServer(_app(lifespan=lifespan), name="broken")
    with pytest.raises(
        ServerStartupError, match="broken did not start up within 30.0s: ValueError: the database is missing"
    ) as info:
        server.start()
    assert isinstance(info.value.__cause__, ValueError)
    assert not server.running
    with pytest.raises(httpx.ConnectError):  # the socket is closed again
        httpx.get(server.endpoint + "/hello")


def test_serve_context_wraps_serving_in_the_server_loop() -> None:
    events: List[str] = []

    @contextlib.asynccontextmanager
    async def context() -> AsyncIterator[None]:
        events.append(f"enter {threading.current_thread().name}")
        yield
        events.append("exit")

    with BackgroundServer(_app(), name="ctx", serve_context=context) as server:
        assert events == [f"enter agl-ctx-{server.port}"]
        assert server.loop is not None and server.loop.is_running()
    assert events[-1] == "exit" and server.loop is None


def test_serve_context_failure_surfaces() -> None:
    @contextlib.asynccontextmanager
    async def context() -> AsyncIterator[None]:
        raise OSError("model file not found")
        yield

    with pytest.raises(ServerStartupError, match="OSError: model file not found"):
        BackgroundServer(_app(), serve_context=context).start()


def test_stop_lets_an_open_request_finish() -> None:
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    entered = threading.Event()
    holder: List[BackgroundServer] = []

    async def slow(request: Any) -> Any:
        import asyncio

        entered.set()
        while not holder[0]._server.should_exit:  # noqa: ASYNC110 - answer once shutdown began (uvicorn: a flag)
            await asyncio.sleep(0.01)
        return PlainTextResponse("finished")

    server = BackgroundServer(_app(routes=[Route("/slow", slow)]))
    holder.append(server.start())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(httpx.get, server.endpoint + "/slow", timeout=30)
        assert entered.wait(30)
        server.stop(timeout=30)
        assert answer.result().text == "finished"
    assert not server.running


def test_stop_gives_up_on_a_hung_request_after_the_timeout() -> None:
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    entered = threading.Event()

    async def hung(request: Any) -> Any:
        import asyncio

        entered.set()
        await asyncio.Event().wait()
        return PlainTextResponse("never")

    server = BackgroundServer(_app(routes=[Route("/hung", hung)])).start()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(httpx.get, server.endpoint + "/hung", timeout=30)
        assert entered.wait(30)
        server.stop(timeout=0.5)
        assert not server.running
        try:
            status = answer.result().status_code
        except httpx.HTTPError:  # the connection was closed under it
            status = None
        assert status != 200


@pytest.mark.anyio
async def test_async_start_and_stop() -> None:
    async with BackgroundServer(_app()) as server:
        async with httpx.AsyncClient() as client:
            assert (await client.get(server.endpoint + "/hello")).status_code == 200
    assert not server.running
    await server.astop()


def test_bind_socket_and_hosts() -> None:
    sock = bind_socket()
    try:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0 and sock.get_inheritable()
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind_socket("127.0.0.1", port)
    finally:
        sock.close()
    assert is_loopback("localhost") and is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("example.com")
    assert access_host("0.0.0.0") == "127.0.0.1" and access_host("::") == "[::1]" and access_host("::1") == "[::1]"
    assert access_host("10.1.2.3") == "10.1.2.3" and access_host("localhost") == "localhost"
    assert access_host("0.0.0.0", outbound=True).count(".") == 3  # an IPv4 address of this machine


def test_wait_until_healthy() -> None:
    with BackgroundServer(_app()) as server:
        wait_until_healthy(server.endpoint + "/hello", timeout=30)
        with pytest.raises(ServerStartupError, match=r"did not start up within 0.2s \(last health check: HTTP 404\)"):
            wait_until_healthy(server.endpoint + "/missing", timeout=0.2)
        with pytest.raises(ServerStartupError, match="probe exited with code 3 while starting"):
            wait_until_healthy(
                server.endpoint + "/missing", timeout=30, exited=lambda: "exited with code 3", name="probe"
            )
    with pytest.raises(ServerStartupError, match="last health check: URLError"):
        wait_until_healthy(server.endpoint + "/hello", timeout=0.2)
