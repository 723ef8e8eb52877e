from __future__ import annotations

from typing import Any, Awaitable, Callable

import pytest
from agentlightning.store.base import LightningStore
from agentlightning_memory import InMemoryLightningStore


@pytest.fixture
def store_factory() -> Callable[..., Awaitable[LightningStore]]:
    """``await store_factory(**engine_options)`` -> a fresh InMemoryLightningStore (the suite closes it)."""

    async def factory(**options: Any) -> LightningStore:
        return InMemoryLightningStore(**options)

    return factory
