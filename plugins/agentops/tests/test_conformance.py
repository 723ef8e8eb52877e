"""The same OpenAI call traced by OtelTracer and by AgentOpsTracer: same span names and, where the attribute names
overlap, the same values (the adapters read only overlapping ones); both reach the store the same way."""

from __future__ import annotations

from typing import Any, Dict, List

import openai
import pytest
from agentlightning.adapter import TracerTraceToTriplet, TraceToMessages
from agentlightning.testing.openai_server import OpenAITestServer, Reply, ScriptedHandler, ToolCall

pytestmark = [pytest.mark.anyio, pytest.mark.network]

CHAT = "openai.chat.completion"
# The one shared attribute spelled differently: AgentOps writes gen_ai.system "OpenAI", we write "openai".
KNOWN_DIFFERENT = {"gen_ai.system"}

REQUEST: Dict[str, Any] = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "add 1 and 2"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "adds",
                "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
            },
        }
    ],
    "temperature": 0.5,
    "max_tokens": 20,
    "logprobs": True,
    "extra_body": {"return_token_ids": True},
}


def _handler() -> ScriptedHandler:
    return ScriptedHandler(
        [Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 2})]), Reply(content="3")], repeat_last=True
    )


async def _trace_one(tracer: Any, store: Any, base_url: str) -> List[Any]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)
    rollout = await store.start_rollout({})
    async with tracer.trace_context(
        "conformance", store=store, rollout_id=rollout.rollout_id, attempt_id=rollout.attempt.attempt_id
    ):
        await client.chat.completions.create(**REQUEST)
        await client.chat.completions.create(**REQUEST)
    await client.close()
    return list(await store.query_spans(rollout.rollout_id))


async def test_same_call_same_spans_as_otel_tracer(memory_store: Any) -> None:
    from agentlightning.tracer.otel import OtelTracer
    from agentlightning_agentops import AgentOpsTracer

    results = {}
    for label, tracer in (("otel", OtelTracer(flush_interval=0.02)), ("agentops", AgentOpsTracer(flush_interval=0.02))):
        tracer.init_worker(0, memory_store)
        try:
            with OpenAITestServer(_handler()) as server:
                results[label] = await _trace_one(tracer, memory_store, server.base_url)
        finally:
            tracer.teardown_worker(0)

    otel, agentops = results["otel"], results["agentops"]
    otel_chats = sorted((s for s in otel if s.name == CHAT), key=lambda s: s.start_time)
    agentops_chats = sorted((s for s in agentops if s.name == CHAT), key=lambda s: s.start_time)
    assert len(otel_chats) == len(agentops_chats) == 2
    # AgentOps adds its trace's root span and one span per tool call; every span OtelTracer made is there too
    assert {s.name for s in otel} <= {s.name for s in agentops}
    assert {s.name for s in agentops} - {s.name for s in otel} <= {"conformance.session", "tool_call.add"}, {
        s.name for s in agentops
    }
    (session,) = [s for s in agentops if s.name == "conformance.session"]
    assert {s.parent_id for s in agentops_chats} == {session.span_id}

    for ours, theirs in zip(otel_chats, agentops_chats):
        shared = (set(ours.attributes) & set(theirs.attributes)) - KNOWN_DIFFERENT
        different = {
            k: (ours.attributes[k], theirs.attributes[k]) for k in shared if ours.attributes[k] != theirs.attributes[k]
        }
        assert different == {}
        # everything the adapters read is shared
        for key in (
            "prompt_token_ids",
            "response_token_ids",
            "logprobs.content",
            "gen_ai.response.id",
            "gen_ai.prompt.0.content",
            "gen_ai.prompt.1.role",
            "gen_ai.request.model",
            "gen_ai.usage.prompt_tokens",
            "gen_ai.usage.completion_tokens",
        ):
            assert key in shared, key
        assert theirs.status.status_code in ("OK", "UNSET") and ours.status.status_code in ("OK", "UNSET")
        assert (theirs.rollout_id, theirs.attempt_id) != (ours.rollout_id, ours.attempt_id)

    def triplet_view(spans: List[Any]) -> List[Any]:
        return [(t.prompt["token_ids"], t.response["token_ids"]) for t in TracerTraceToTriplet().adapt(spans)]

    assert triplet_view(agentops) == triplet_view(otel)
    # AgentOps records a tool call as a ``tool_call.<name>`` child span (we record it on the LLM span): the
    # messages adapter reads either, to the same result
    assert TraceToMessages().adapt(agentops) == TraceToMessages().adapt(otel)
    assert len(TraceToMessages().adapt(otel)) == 2
