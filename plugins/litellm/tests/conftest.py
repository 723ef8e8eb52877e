"""Shared fixtures: a vLLM-like backend (the OpenAI test server), a memory store, and one proxy serving both.

The proxy runs in thread mode so that LiteLLM is imported once per test session (seconds on a loaded machine);
the process mode is covered by the slow tests.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from agentlightning.testing.openai_server import OpenAITestServer
from llmproxy_helpers import backend_handler, model_list


def pytest_configure(config: Any) -> None:
    # LiteLLM's own deprecation noise (pydantic 2.11+), raised inside the thread-mode proxy of these tests.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:litellm.*")
    config.addinivalue_line("filterwarnings", "ignore:Item .* is using the `ReadOnly` qualifier:UserWarning")


@pytest.fixture(scope="session")
def backend() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(backend_handler) as server:
        yield server


@pytest.fixture(scope="session")
def store() -> Any:
    from agentlightning_memory import InMemoryLightningStore

    return InMemoryLightningStore()


@pytest.fixture(scope="session")
def proxy(backend: OpenAITestServer, store: Any) -> Iterator[Any]:
    from agentlightning_litellm import LLMProxy

    llm_proxy = LLMProxy(model_list=model_list(backend), store=store, launch_mode="thread", timeout=30)
    llm_proxy.start()
    try:
        yield llm_proxy
    finally:
        llm_proxy.stop()
