"""The store conformance suite through LightningStoreClient + server, over the memory and SQLite backends.

The client is not an engine store, but the served store is, and the factory hands the engine options (a manual clock
included: the server runs in this process) to it, so the engine suite applies. Every store call is an HTTP request
here, so the SQLite variant runs on asyncio only (the client's trio path is covered by the memory variant; see
conftest.py) and the random state machine runs 12 examples by default; the full state machine run is ``-m slow``.
"""

from __future__ import annotations

from typing import Any, List

import pytest
from agentlightning.testing.store import EngineStoreConformance, run_store_state_machine, stateful_settings
from agentlightning_server.testing import StoreHost
from hypothesis import settings


@pytest.fixture(params=["memory", "sqlite"], scope="module")
def served_backend(request: Any) -> str:
    return str(request.param)


class TestStoreOverHttp(EngineStoreConformance):
    state_machine_settings = settings(stateful_settings(), max_examples=12)
    served_store_names = ("InMemoryLightningStore", "SqliteLightningStore")  # the client reports the served store's

    @pytest.fixture
    def store_factory(self, store_host: StoreHost, served_backend: str, created_keys: List[str], tmp_path: Any) -> Any:
        from conftest import backend_factory

        cls = backend_factory(served_backend)
        count = iter(range(1_000_000))

        async def factory(**options: Any) -> Any:
            if served_backend == "sqlite":
                options.setdefault("path", str(tmp_path / f"store-{next(count)}.db"))
            key, client = await store_host.new_client(lambda: cls(**options))
            created_keys.append(key)
            return client

        return factory

    @pytest.mark.slow
    def test_random_operation_sequences_full(self, store_factory: Any) -> None:
        run_store_state_machine(store_factory, settings_=stateful_settings(), options=self.store_options, clock=True)
