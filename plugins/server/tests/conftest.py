"""Fixtures: one store host per test module, a fresh backing store (memory) per store_factory call."""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterator, List

import pytest
from agentlightning_server.testing import StoreHost


@pytest.fixture(scope="module")
def store_host() -> Iterator[StoreHost]:
    with StoreHost() as host:
        yield host


@pytest.fixture
async def memory_client(store_host: StoreHost) -> AsyncIterator[Any]:
    """A client over a fresh in-memory store served by the module's host."""
    from agentlightning_memory import InMemoryLightningStore

    key, client = await store_host.new_client(lambda: InMemoryLightningStore(watchdog_interval=None))
    try:
        yield client
    finally:
        await client.close()
        store_host.drop(key)


def backend_factory(backend: str) -> Any:
    if backend == "memory":
        from agentlightning_memory import InMemoryLightningStore

        return InMemoryLightningStore
    from agentlightning_sqlite import SqliteLightningStore  # a test dependency of this plugin: missing is an error

    return SqliteLightningStore


@pytest.fixture
def created_keys(store_host: StoreHost) -> Iterator[List[str]]:
    keys: List[str] = []
    yield keys
    for key in keys:
        store_host.drop(key)


@pytest.fixture
def served(store_host: StoreHost) -> Iterator[Any]:
    """``(base_url, http)``: raw HTTP access (httpx.Client) to a fresh in-memory store; base_url ends in /v1/agl."""
    import httpx
    from agentlightning_memory import InMemoryLightningStore

    key, url = store_host.add(lambda: InMemoryLightningStore(watchdog_interval=None))
    with httpx.Client(base_url=url + "/v1/agl", timeout=30, verify=False) as http:  # noqa: S501 - plain HTTP
        yield http
    store_host.drop(key)


def pytest_collection_modifyitems(config: Any, items: List[Any]) -> None:
    """SQLite over HTTP runs on asyncio only: the server side does not depend on the client's event loop, and the
    client's trio path is covered over the memory backend."""
    dropped, kept = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        sqlite_on_trio = params.get("served_backend") == "sqlite" and params.get("anyio_backend") == "trio"
        (dropped if sqlite_on_trio else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
