"""Server lifecycle and protection: tokens, loopback default, CORS, size limits, workers, the CLI command."""

from __future__ import annotations

import argparse
import socket
from typing import Any, Iterator, List

import httpx
import pytest
from agentlightning_server import LightningStoreServer
from agentlightning_server.app import ServerSettings
from agentlightning_server.testing import StoreHost


def _memory() -> object:
    from agentlightning_memory import InMemoryLightningStore

    return InMemoryLightningStore(watchdog_interval=None)


@pytest.fixture(scope="module")
def guarded() -> Iterator[StoreHost]:
    settings = ServerSettings(token="s3cret-token", max_body_bytes=4096, cors_origins=("http://ui.example",))
    with StoreHost(settings) as host:
        yield host


def test_token_required_and_compared(guarded: StoreHost) -> None:
    key, url = guarded.add(_memory)
    api = url + "/v1/agl"
    assert httpx.get(api + "/health").status_code == 200  # health needs no token
    missing = httpx.get(api + "/statistics")
    assert missing.status_code == 401 and missing.json()["error_type"] == "AuthenticationError"
    assert "missing bearer token" in missing.json()["detail"]
    wrong = httpx.get(api + "/statistics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong bearer token" in wrong.json()["detail"]
    right = httpx.post(api + "/queues/rollouts/enqueue", json={"rollouts": [{"input": 1}]},
                       headers={"Authorization": "Bearer s3cret-token"})  # fmt: skip
    assert right.status_code == 201
    unauth_write = httpx.post(api + "/queues/rollouts/enqueue", json={"rollouts": [{"input": 2}]})
    assert unauth_write.status_code == 401
    otlp = httpx.post(url + "/v1/traces", content=b"", headers={"Content-Type": "application/x-protobuf"})
    assert otlp.status_code == 401
    stats = httpx.get(api + "/statistics", headers={"Authorization": "Bearer s3cret-token"}).json()
    assert stats["total_rollouts"] == 1
    guarded.drop(key)


@pytest.mark.anyio
async def test_client_with_and_without_token(guarded: StoreHost) -> None:
    from agentlightning_server import LightningStoreClient
    from agentlightning_server.wire import AuthenticationError

    key, client = await guarded.new_client(_memory)
    try:
        assert (await client.enqueue_rollout("x")).status == "queuing"
        anonymous = LightningStoreClient(client.url, token=None, retry_delays=())
        with pytest.raises(AuthenticationError):
            await anonymous.statistics()
        with pytest.raises(PermissionError):
            await anonymous.enqueue_rollout("y")
        await anonymous.close()
        assert (await client.statistics())["total_rollouts"] == 1
    finally:
        await client.close()
        guarded.drop(key)


def test_body_size_limit(guarded: StoreHost) -> None:
    key, url = guarded.add(_memory)
    headers = {"Authorization": "Bearer s3cret-token"}
    big = {"rollouts": [{"input": "x" * 10_000}]}
    response = httpx.post(url + "/v1/agl/queues/rollouts/enqueue", json=big, headers=headers)
    assert response.status_code == 413 and "limit of 4096 bytes" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
        yield b'{"rollouts": [{"input": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}]}'

    response = httpx.post(url + "/v1/agl/queues/rollouts/enqueue", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert httpx.get(url + "/v1/agl/statistics", headers=headers).json()["total_rollouts"] == 0
    guarded.drop(key)


def test_cors_only_when_asked(guarded: StoreHost, store_host: StoreHost) -> None:
    key, url = guarded.add(_memory)
    preflight = {"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"}
    response = httpx.options(url + "/v1/agl/rollouts", headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://ui.example"
    other = httpx.get(url + "/v1/agl/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    guarded.drop(key)
    key, url = store_host.add(_memory)  # default settings: no CORS at all
    response = httpx.get(url + "/v1/agl/health", headers={"Origin": "http://ui.example"})
    assert "access-control-allow-origin" not in response.headers
    store_host.drop(key)


def test_refuses_public_address_without_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGL_STORE_TOKEN", raising=False)
    with pytest.raises(ValueError, match="without a token"):
        LightningStoreServer("memory://", host="0.0.0.0", port=0)
    with pytest.raises(ValueError, match="without a token"):
        LightningStoreServer("memory://", host="192.0.2.1", port=0)
    LightningStoreServer("memory://", host="0.0.0.0", port=0, token="t")  # constructing binds nothing
    monkeypatch.setenv("AGL_STORE_TOKEN", "from-env")
    assert LightningStoreServer("memory://", host="0.0.0.0", port=0).token == "from-env"


@pytest.fixture
def memory_only(plugin_manager: Any) -> Any:
    """Store lookup with just the memory plugin (other plugins in the tree may be mid-edit)."""
    import agentlightning_memory.hooks

    plugin_manager.register(agentlightning_memory.hooks)
    return plugin_manager


def test_workers_need_a_shared_store(memory_only: Any) -> None:
    with pytest.raises(ValueError, match="zero_copy"):
        LightningStoreServer("memory://", port=0, workers=2)
    with pytest.raises(ValueError, match="needs the store as a URL"):
        LightningStoreServer(_memory, port=0, launch_mode="subprocess")  # type: ignore[arg-type]


def test_thread_server_lifecycle_and_port_conflict() -> None:
    with LightningStoreServer(_memory, port=0) as server:  # type: ignore[arg-type]
        assert server.running and server.endpoint.startswith("http://127.0.0.1:")
        assert httpx.get(server.endpoint + "/v1/agl/health").json() == {"status": "ok"}
        assert server.otlp_traces_endpoint() == server.endpoint + "/v1/traces"
        port = int(server.endpoint.rsplit(":", 1)[1])
        with pytest.raises(RuntimeError, match="did not start up"):
            LightningStoreServer(_memory, port=port).start()  # type: ignore[arg-type]
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.endpoint + "/v1/agl/health")
    server.stop()  # twice is fine


def test_subprocess_server_from_url(tmp_path: object) -> None:
    with LightningStoreServer("memory://", port=0, launch_mode="subprocess") as server:
        assert server.pid is not None
        response = httpx.post(server.endpoint + "/v1/agl/queues/rollouts/enqueue", json={"rollouts": [{"input": 1}]})
        assert response.status_code == 201
    assert not server.running


def test_store_command_registers_serve() -> None:
    from agentlightning_server.cli import configure_parser

    parser = argparse.ArgumentParser(prog="agl store")
    configure_parser(parser)
    args = parser.parse_args(["serve", "--store", "sqlite:///run.db", "--port", "0", "--workers", "2", "--token", "t"])
    assert args.store == "sqlite:///run.db" and args.port == 0 and args.workers == 2 and args.token == "t"
    assert args.host == "127.0.0.1" and args.func.__name__ == "run_from_args"


def test_serve_command_refuses_public_address_without_token(monkeypatch: pytest.MonkeyPatch, memory_only: Any) -> None:
    from agentlightning_server.serve import main

    monkeypatch.delenv("AGL_STORE_TOKEN", raising=False)
    assert main(["--store", "memory://", "--host", "0.0.0.0", "--port", "0"]) == 1
    assert main(["--store", "memory://", "--port", "0", "--workers", "3"]) == 1


def test_hooks_register_store_exports_and_command(plugin_manager: object) -> None:
    import agentlightning_server.hooks as hooks

    plugin_manager.register(hooks)  # type: ignore[attr-defined]
    from agentlightning.store import open_store

    client = open_store("http://127.0.0.1:1")
    assert type(client).__name__ == "LightningStoreClient"
    assert client.capabilities == {"thread_safe": True, "async_safe": True, "zero_copy": True, "otlp_traces": True}
    import agentlightning as agl

    assert agl.LightningStoreServer is LightningStoreServer


def test_loopback_port_is_free_after_stop() -> None:
    server = LightningStoreServer(_memory, port=0).start()  # type: ignore[arg-type]
    port = int(server.endpoint.rsplit(":", 1)[1])
    server.stop()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_store_command_takes_upstream_options_without_serve() -> None:
    from agentlightning_server.cli import configure_parser

    parser = argparse.ArgumentParser(prog="agl store")
    configure_parser(parser)
    args = parser.parse_args(["--port", "4747", "--n-workers", "1", "--backend", "memory", "--log-level", "INFO"])
    assert args.port == 4747 and args.workers == 1 and args.backend == "memory" and args.store_command is None
    assert args.func.__name__ == "run_from_args"


def test_store_command_refuses_the_mongo_backend_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    from agentlightning_server.serve import main

    assert main(["--backend", "mongo", "--port", "0"]) == 2
    assert "mongo backend is not available" in capsys.readouterr().err


@pytest.mark.parametrize(
    "form",
    [["agl", "store", "serve"], ["agl", "store"], ["python", "-m", "agentlightning.cli.store"]],
    ids=["agl-store-serve", "agl-store-upstream-form", "python-m-cli-store"],
)
def test_agl_store_serve_end_to_end(form: List[str]) -> None:
    """``agl store serve``, upstream's ``agl store --port`` and ``python -m agentlightning.cli.store`` through the
    real entry points: each announces its endpoint, serves, stops on SIGTERM."""
    import shutil
    import subprocess
    import sys

    if form[0] == "agl":
        agl = shutil.which("agl", path=str(__import__("pathlib").Path(sys.executable).parent))
        if agl is None:
            pytest.skip("the agl entry point is not installed")
        command = [agl, *form[1:]]
    else:
        command = [sys.executable, *form[1:]]
    process = subprocess.Popen(
        [*command, "--store", "memory://", "--port", "0", "--token", "tok", "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("AGL_STORE_SERVER_LISTENING http://127.0.0.1:"), line
        endpoint = line.split()[1]
        headers = {"Authorization": "Bearer tok"}
        for _ in range(200):
            try:
                if httpx.get(endpoint + "/v1/agl/statistics", headers=headers).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            __import__("time").sleep(0.05)
        assert httpx.get(endpoint + "/v1/agl/statistics", headers=headers).json()["name"] == "InMemoryLightningStore"
    finally:
        process.terminate()
        process.wait(20)
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode in (0, -15)  # uvicorn re-raises SIGTERM after a graceful shutdown


@pytest.mark.slow
def test_several_workers_share_one_sqlite_file(tmp_path: Any) -> None:
    pytest.importorskip("agentlightning_sqlite")
    import anyio

    url = f"sqlite:///{tmp_path}/shared.db"
    with LightningStoreServer(url, port=0, workers=2, token="tok") as server:
        assert server.launch_mode == "subprocess"

        async def work() -> None:
            client = server.client()
            try:
                async with anyio.create_task_group() as tg:
                    for i in range(40):
                        tg.start_soon(client.enqueue_rollout, {"i": i})
                claimed = await client.dequeue_many_rollouts(limit=100, worker_id="w")
                assert len(claimed) == 40 and len({c.rollout_id for c in claimed}) == 40
                for _ in range(10):  # whichever worker answers, it sees the same data
                    assert (await client.statistics())["total_rollouts"] == 40
            finally:
                await client.close()

        anyio.run(work)
