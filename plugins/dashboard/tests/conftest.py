"""Fixtures: a small SQLite store with rollouts, resources and spans, written through the store API."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest


async def _fill(url: str) -> None:
    import agentlightning as agl

    store = agl.open_store(url)
    try:
        await store.add_resources({"prompt": agl.PromptTemplate(template="Answer: {q}", engine="f-string")})
        for i in range(3):
            await store.enqueue_rollout({"q": i})
    finally:
        await store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    """URL of an SQLite store holding one resources version and three queued rollouts."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    anyio.run(_fill, url)
    return url
