"""The store conformance suite through LightningStoreClient + server, over the memory (and SQLite) backends.

Every store call is an HTTP request here, so the SQLite variant runs on asyncio only (the client's trio path is
covered by the memory variant) and the random state machine runs 12 examples by default; the full state machine
run is ``-m slow``.
"""

from __future__ import annotations

from typing import Any, List

import pytest
from agentlightning.testing.store_stateful import run_store_state_machine, stateful_settings
from agentlightning.testing.store_suite import *  # noqa: F403
from agentlightning_server.testing import StoreHost
from hypothesis import settings


@pytest.fixture(params=["memory", "sqlite"], scope="module")
def served_backend(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def store_factory(store_host: StoreHost, served_backend: str, created_keys: List[str], tmp_path: Any) -> Any:
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


class TestStoreStateMachine:  # replaces the suite's: a quick run by default, the full one under -m slow
    def test_random_operation_sequences(self, store_factory: Any) -> None:
        run_store_state_machine(store_factory, settings_=settings(stateful_settings(), max_examples=12))

    @pytest.mark.slow
    def test_random_operation_sequences_full(self, store_factory: Any) -> None:
        run_store_state_machine(store_factory, settings_=stateful_settings())
