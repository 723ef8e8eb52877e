"""Agents calling ``litellm`` directly: spans with token ids that the default triplet adapter reads."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from agentlightning.adapter import TracerTraceToTriplet
from agentlightning.testing.openai_server import OpenAITestServer
from agentlightning.tracer.otel import OtelTracer
from agentlightning_litellm import instrument_litellm, uninstrument_litellm
from agentlightning_litellm.instrumentation import is_litellm_instrumented
from agentlightning_memory import InMemoryLightningStore
from llmproxy_helpers import expected_chat_ids


@pytest.fixture
def instrumented() -> Iterator[Any]:
    assert instrument_litellm()
    try:
        yield __import__("litellm")
    finally:
        uninstrument_litellm()
    assert not is_litellm_instrumented()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # LiteLLM's async client is asyncio-only (aiohttp)
@pytest.mark.anyio
async def test_direct_litellm_calls_are_traced_with_token_ids(instrumented: Any, backend: OpenAITestServer) -> None:
    litellm = instrumented
    store = InMemoryLightningStore()
    rollout = await store.start_rollout(input=1)
    tracer = OtelTracer(instrument=False)
    tracer.init_worker(0, store)
    kwargs = {"model": "hosted_vllm/test-model", "api_base": backend.base_url, "api_key": "x", "return_token_ids": True}
    try:
        async with tracer.trace_context(
            "rollout", rollout_id=rollout.rollout_id, attempt_id=rollout.attempt.attempt_id
        ):
            await litellm.acompletion(messages=[{"role": "user", "content": "async"}], **kwargs)
            litellm.completion(messages=[{"role": "user", "content": "sync"}], **kwargs)
            stream = await litellm.acompletion(
                messages=[{"role": "user", "content": "streamed"}], stream=True, **kwargs
            )
            async for _ in stream:
                pass
    finally:
        tracer.teardown_worker(0)
    spans = await store.query_spans(rollout.rollout_id)
    calls = [s for s in spans if s.name == "openai.chat.completion"]
    assert len(calls) == 3
    for span in calls[:2]:
        text = span.attributes["gen_ai.prompt.0.content"]
        prompt_ids, response_ids = expected_chat_ids([{"role": "user", "content": text}])
        assert span.attributes["prompt_token_ids"] == prompt_ids
        assert span.attributes["response_token_ids"] == response_ids
    # LiteLLM drops a stream's prompt ids before the caller sees them; the response ids survive.
    assert calls[2].attributes["response_token_ids"] == expected_chat_ids([{"role": "user", "content": "streamed"}])[1]
    triplets = TracerTraceToTriplet().adapt(spans)
    assert [t.response["token_ids"] for t in triplets[:2]] == [c.attributes["response_token_ids"] for c in calls[:2]]


def test_instrumentation_is_reference_counted(instrumented: Any) -> None:
    patched = instrumented.completion
    assert instrument_litellm() and instrumented.completion is patched
    uninstrument_litellm()
    assert is_litellm_instrumented() and instrumented.completion is patched
