"""Start, stop, restart and model-list updates; a store that is down never fails a call."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from agentlightning.testing.openai_server import OpenAITestServer
from agentlightning_litellm import LLMProxy
from llmproxy_helpers import FlakyStore, model_list


def _ask(proxy: Any, model: str, base: str) -> str:
    client = openai.OpenAI(base_url=base, api_key="k", max_retries=0, timeout=60)
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "ping"}])
    return str(reply.choices[0].message.content)


def test_update_model_list_restarts_a_running_proxy_on_the_same_port(backend: OpenAITestServer) -> None:
    proxy = LLMProxy(model_list=model_list(backend, "first"), launch_mode="thread")
    with proxy:
        port = proxy.port
        assert _ask(proxy, "first", proxy.endpoint + "/v1") == "echo: ping"
        proxy.update_model_list(model_list(backend, "second"))
        assert proxy.is_running() and proxy.port == port
        assert _ask(proxy, "second", proxy.endpoint + "/v1") == "echo: ping"
        with pytest.raises(openai.BadRequestError, match="'first' is not served"):
            _ask(proxy, "first", proxy.endpoint + "/v1")
        proxy.restart()
        assert proxy.is_running() and proxy.port == port
    assert not proxy.is_running()


def test_a_call_succeeds_while_the_store_is_down(backend: OpenAITestServer) -> None:
    store = FlakyStore(failures=10**6)
    proxy = LLMProxy(model_list=model_list(backend), store=store, launch_mode="thread", retry_seconds=0.2)
    with proxy:
        base = proxy.as_resource().get_base_url("ro-x", "at-x")
        assert _ask(proxy, "policy", base) == "echo: ping"
        stats: Any = {}
        for _ in range(200):
            stats = httpx.get(proxy.endpoint + "/agl/stats").json()
            if stats["dropped"]:
                break
            import time

            time.sleep(0.05)
        assert stats["dropped"] == 2 and stats["delivered"] == 0


def test_a_busy_port_is_a_clear_error(backend: OpenAITestServer) -> None:
    with LLMProxy(model_list=model_list(backend), launch_mode="thread") as first:
        second = LLMProxy(port=first.port, model_list=model_list(backend), launch_mode="thread")
        with pytest.raises(RuntimeError, match=f"cannot listen on 127.0.0.1:{first.port}"):
            second.start()
        assert not second.is_running()


def test_start_stop_and_restart_can_be_awaited_as_upstream_did(backend: OpenAITestServer) -> None:
    import asyncio

    from agentlightning.llm_proxy import LLMProxy as UpstreamPath

    assert UpstreamPath is LLMProxy
    proxy = LLMProxy(model_list=model_list(backend), launch_mode="thread")

    async def lifecycle() -> None:
        await proxy.start()
        assert proxy.is_running()
        port = proxy.port
        await proxy.restart()
        assert proxy.is_running() and proxy.port == port
        await proxy.stop()
        assert not proxy.is_running()

    asyncio.run(lifecycle())
