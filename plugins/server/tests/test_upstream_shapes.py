"""The server and client in upstream v0.3's shapes: the server is a LightningStore, start/stop can be awaited, and
upstream's argument names are accepted."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from agentlightning.store.base import LightningStore
from agentlightning.store.client_server import LightningStoreClient, LightningStoreServer
from agentlightning.store.memory import InMemoryLightningStore
from agentlightning.utils.server_launcher import PythonServerLauncherArgs


def test_server_is_a_store_whose_methods_reach_the_served_store() -> None:
    async def flow() -> None:
        store = InMemoryLightningStore()
        server = LightningStoreServer(store, "127.0.0.1", 0)
        assert isinstance(server, LightningStore)
        started = await server.start()  # upstream's form
        assert started is server and server.running
        try:
            rollout = await server.enqueue_rollout(input={"q": 1})  # in process, on the served store
            assert (await store.get_rollout_by_id(rollout.rollout_id)) is not None
            async with LightningStoreClient(server.endpoint) as client:  # and over HTTP
                fetched = await client.get_rollout_by_id(rollout.rollout_id)
                assert fetched is not None and fetched.input == {"q": 1}
                assert client.server_address == server.endpoint + "/v1/agl"
        finally:
            await server.stop()
        assert not server.running
        server.stop()  # plain call, twice: no error, nothing to await
        await store.close()

    asyncio.run(flow())


def test_upstream_argument_names_map_to_ours() -> None:
    store = InMemoryLightningStore()
    with pytest.warns(DeprecationWarning, match="cors_allow_origins"):
        server = LightningStoreServer(store, "127.0.0.1", 0, cors_allow_origins=["http://ui.test"], tracker="t")
    assert server.settings.cors_origins == ("http://ui.test",) and server.tracker == "t"
    with pytest.warns(DeprecationWarning, match="n_workers"):
        single = LightningStoreServer(store, "127.0.0.1", 0, n_workers=1)
    assert single.workers == 1
    assert LightningStoreServer(store, "127.0.0.1", 0, launch_mode="asyncio").launch_mode == "thread"
    with pytest.raises(ValueError, match="URL"):
        LightningStoreServer(store, "127.0.0.1", 0, launch_mode="mp")  # upstream refused it too (no zero-copy)
    args = PythonServerLauncherArgs(host="127.0.0.1", port=0, launch_mode="asyncio", startup_timeout=12.0)
    launched = LightningStoreServer(store, launcher_args=args)
    assert (launched.host, launched.port, launched.launch_mode, launched.startup_timeout) == (
        "127.0.0.1",
        0,
        "thread",
        12.0,
    )
    with pytest.raises(ValueError, match="not both"):
        LightningStoreServer(store, launcher_args=args, launch_mode="thread")
    with launched:
        assert httpx.get(launched.endpoint + "/v1/agl/health", timeout=10).status_code == 200


def test_client_accepts_upstreams_server_address() -> None:
    with pytest.warns(DeprecationWarning, match="server_address"):
        client = LightningStoreClient(server_address="http://127.0.0.1:9", health_retry_delays=(0.1,))
    assert client.url == "http://127.0.0.1:9"
    with pytest.raises(TypeError, match="not both"):
        LightningStoreClient("http://127.0.0.1:9", server_address="http://127.0.0.1:9")
