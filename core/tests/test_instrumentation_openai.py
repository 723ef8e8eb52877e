"""The openai client, instrumented, against the local server: spans -> store -> triplets / messages."""

from __future__ import annotations

import json
from typing import Any, List

import anyio
import anyio.to_thread
import pytest
from agentlightning.adapter import TracerTraceToTriplet, TraceToMessages
from agentlightning.emitter import emit_reward
from agentlightning.instrumentation import instrument_openai, is_openai_instrumented, uninstrument_openai
from agentlightning.testing.openai_server import (
    ErrorReply,
    OpenAITestServer,
    Reply,
    ScriptedHandler,
    ToolCall,
    fake_tokenize,
    render_prompt,
)
from agentlightning.tracer.otel import OtelTracer

openai = pytest.importorskip("openai")

pytestmark = [pytest.mark.anyio, pytest.mark.network]

QUESTION = [{"role": "system", "content": "You add numbers."}, {"role": "user", "content": "1+1?"}]
IDS = {"return_token_ids": True}


async def run_rollout(tracer: OtelTracer, store: Any, agent: Any) -> List[Any]:
    rollout = await store.start_rollout({"q": "1+1"})
    async with tracer.trace_context(
        "agent", store=store, rollout_id=rollout.rollout_id, attempt_id=rollout.attempt.attempt_id
    ):
        await agent()
    return list(await store.query_spans(rollout.rollout_id))


async def test_sync_client_agent_to_triplets(
    otel_tracer: OtelTracer, memory_store: Any, openai_server: OpenAITestServer
) -> None:
    openai_server.handler = ScriptedHandler(["2", "Yes, 2."])

    def agent() -> None:
        client = openai.OpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
        first = client.chat.completions.create(model="m", messages=QUESTION, temperature=0.5, extra_body=IDS)
        follow_up = [
            *QUESTION,
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "Sure?"},
        ]
        client.chat.completions.create(model="m", messages=follow_up, extra_body=IDS)
        emit_reward(1.0)

    async def run() -> None:
        await anyio.to_thread.run_sync(agent)

    spans = await run_rollout(otel_tracer, memory_store, run)
    assert sorted(s.name for s in spans) == [
        "agentlightning.annotation",
        "openai.chat.completion",
        "openai.chat.completion",
    ]
    triplets = TracerTraceToTriplet().adapt(spans)
    assert len(triplets) == 2
    first, second = triplets
    assert first.prompt["token_ids"] == fake_tokenize(render_prompt({"messages": QUESTION}))
    assert first.response["token_ids"] == fake_tokenize("2")
    assert second.response["token_ids"] == fake_tokenize("Yes, 2.")
    assert (first.reward, second.reward) == (None, 1.0)
    assert first.prompt["raw_content"] == [
        {"role": "system", "content": "You add numbers."},
        {"role": "user", "content": "1+1?"},
    ]
    assert first.response["raw_content"] == [{"role": "assistant", "content": "2", "finish_reason": "stop"}]
    assert first.metadata["request"]["temperature"] == 0.5
    assert first.metadata["response_id"] != second.metadata["response_id"]
    llm = next(s for s in spans if s.name == "openai.chat.completion")
    assert llm.attributes["gen_ai.usage.prompt_tokens"] == len(first.prompt["token_ids"])
    assert llm.attributes["gen_ai.system"] == "openai"


async def test_streaming_agent_to_triplets(
    otel_tracer: OtelTracer, memory_store: Any, openai_server: OpenAITestServer
) -> None:
    openai_server.handler = lambda request: "the answer is 2"

    def agent() -> str:
        client = openai.OpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=QUESTION, stream=True, stream_options={"include_usage": True}, extra_body=IDS
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        emit_reward(0.5)
        return text

    async def run() -> None:
        assert await anyio.to_thread.run_sync(agent) == "the answer is 2"

    spans = await run_rollout(otel_tracer, memory_store, run)
    (triplet,) = TracerTraceToTriplet().adapt(spans)
    assert triplet.prompt["token_ids"] == fake_tokenize(render_prompt({"messages": QUESTION}))
    assert triplet.response["token_ids"] == fake_tokenize("the answer is 2")
    assert triplet.reward == 0.5
    llm = next(s for s in spans if s.name == "openai.chat.completion")
    assert llm.attributes["gen_ai.request.streaming"] is True
    assert llm.attributes["gen_ai.completion.0.content"] == "the answer is 2"
    assert llm.attributes["gen_ai.usage.completion_tokens"] == len(fake_tokenize("the answer is 2"))


async def test_async_client_streaming_and_not(
    otel_tracer: OtelTracer, memory_store: Any, openai_server: OpenAITestServer
) -> None:
    async def agent() -> None:
        client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
        await client.chat.completions.create(model="m", messages=QUESTION, extra_body=IDS)
        stream = await client.chat.completions.create(model="m", messages=QUESTION[1:], stream=True, extra_body=IDS)
        async with stream:
            async for _ in stream:
                pass
        emit_reward(0.25)
        await client.close()

    spans = await run_rollout(otel_tracer, memory_store, agent)
    triplets = TracerTraceToTriplet().adapt(spans)
    assert [t.response["token_ids"] for t in triplets] == [fake_tokenize("echo: 1+1?")] * 2
    assert triplets[1].prompt["token_ids"] == fake_tokenize(render_prompt({"messages": QUESTION[1:]}))
    assert [t.reward for t in triplets] == [None, 0.25]


async def test_stream_closed_early_still_ends_the_span(
    otel_tracer: OtelTracer, recording_store: Any, openai_server: OpenAITestServer
) -> None:
    openai_server.handler = lambda request: "a b c d e f"
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):
        with client.chat.completions.create(model="m", messages=QUESTION, stream=True) as stream:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    break
    (span,) = recording_store.spans
    assert span.name == "openai.chat.completion"
    assert span.attributes["gen_ai.completion.0.content"] == "a "


async def test_tool_calls_to_messages(
    otel_tracer: OtelTracer, recording_store: Any, openai_server: OpenAITestServer
) -> None:
    openai_server.handler = ScriptedHandler([Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 1}, id="call_9")]), "2"])
    tools = [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two ints",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):
        first = client.chat.completions.create(model="m", messages=QUESTION, tools=tools)  # type: ignore[arg-type]
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        messages = [
            *QUESTION,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "2"},
        ]
        client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    records = TraceToMessages().adapt(recording_store.spans)
    tool_call = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "add", "arguments": json.dumps({"a": 1, "b": 1})},
    }
    assert records[0] == {
        "messages": [*QUESTION, {"role": "assistant", "content": None, "tool_calls": [tool_call]}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "add",
                    "description": "Add two ints",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        ],
    }
    assert records[1]["messages"][2:] == [
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "call_9", "content": "2"},
        {"role": "assistant", "content": "2"},
    ]
    assert records[1]["tools"] is None


async def test_failed_call_is_an_error_span(otel_tracer: OtelTracer, recording_store: Any) -> None:
    with OpenAITestServer(lambda request: ErrorReply(503, "overloaded", "server_error")) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):
            with pytest.raises(openai.InternalServerError):
                client.chat.completions.create(model="m", messages=QUESTION)
    (span,) = recording_store.spans
    assert span.status.status_code == "ERROR"
    assert "overloaded" in (span.status.description or "")
    assert TracerTraceToTriplet().adapt(recording_store.spans)[0].response["token_ids"] == []


async def test_text_completions_are_traced(
    otel_tracer: OtelTracer, recording_store: Any, openai_server: OpenAITestServer
) -> None:
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):
        client.completions.create(model="m", prompt="abc", extra_body=IDS)
    (span,) = recording_store.spans
    assert span.name == "openai.completion"
    assert span.attributes["prompt_token_ids"] == fake_tokenize("abc")
    (triplet,) = TracerTraceToTriplet().adapt(recording_store.spans)  # the default match includes text completions
    assert triplet.prompt["token_ids"] == fake_tokenize("abc")
    assert triplet.response["token_ids"] == fake_tokenize("echo: abc")
    assert triplet.response["raw_content"][0]["content"] == "echo: abc"


async def test_instrumentation_is_reference_counted() -> None:
    from openai.resources.chat.completions import Completions

    original = Completions.__dict__["create"]
    was = is_openai_instrumented()
    assert instrument_openai() and instrument_openai()
    assert Completions.__dict__["create"] is not original or was
    uninstrument_openai()
    assert is_openai_instrumented()
    uninstrument_openai()
    assert is_openai_instrumented() is was


async def test_raw_response_calls_are_traced(
    otel_tracer: OtelTracer, recording_store: Any, openai_server: OpenAITestServer
) -> None:
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):
        raw = client.chat.completions.with_raw_response.create(model="m", messages=QUESTION, extra_body=IDS)
        assert raw.parse().choices[0].message.content == "echo: 1+1?"
        raw_stream = client.chat.completions.with_raw_response.create(model="m", messages=QUESTION, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in raw_stream.parse() if c.choices) == "echo: 1+1?"
    first, second = recording_store.spans
    assert first.attributes["response_token_ids"] == fake_tokenize("echo: 1+1?")
    assert second.attributes["gen_ai.request.streaming"] is True
    assert second.attributes["gen_ai.completion.0.content"] == "echo: 1+1?"  # the parsed stream is traced


async def test_async_raw_and_streaming_responses_are_traced_through_parse(
    otel_tracer: OtelTracer, recording_store: Any, openai_server: OpenAITestServer
) -> None:
    """``with_streaming_response`` (an async ``parse()``), streamed and not, and ``with_raw_response`` streams of an
    async client (what the OpenAI Agents SDK's streamed Responses runs use): each span holds the completion."""
    client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):
        async with client.chat.completions.with_streaming_response.create(model="m", messages=QUESTION) as raw:
            assert (await raw.parse()).choices[0].message.content == "echo: 1+1?"
        async with client.responses.with_streaming_response.create(model="m", input="hi", stream=True) as raw:
            events = [e.type async for e in await raw.parse()]
            assert events[-1] == "response.completed"
        legacy = await client.chat.completions.with_raw_response.create(model="m", messages=QUESTION, stream=True)
        assert "".join([c.choices[0].delta.content or "" async for c in legacy.parse() if c.choices]) == "echo: 1+1?"
        unread = await client.chat.completions.with_streaming_response.create(model="m", messages=QUESTION).__aenter__()
        await unread.http_response.aclose()
        del unread  # dropped without parse(): the span still ends
    await client.close()
    chat, responses, legacy_span, dropped = recording_store.spans
    assert chat.attributes["gen_ai.completion.0.content"] == "echo: 1+1?"
    assert responses.name == "openai.responses" and responses.attributes["gen_ai.completion.0.content"] == "echo: hi"
    assert legacy_span.attributes["gen_ai.completion.0.content"] == "echo: 1+1?"
    assert dropped.name == "openai.chat.completion" and "gen_ai.completion.0.content" not in dropped.attributes


async def test_structured_output_parse_is_traced(
    otel_tracer: OtelTracer, recording_store: Any, openai_server: OpenAITestServer
) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        value: int

    openai_server.handler = lambda body: Reply(content='{"value": 2}')
    client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    async with otel_tracer.trace_context(store=recording_store, rollout_id="r", attempt_id="a"):
        chat = await client.chat.completions.parse(model="m", messages=QUESTION, response_format=Answer)
        assert chat.choices[0].message.parsed == Answer(value=2)
        response = await client.responses.parse(model="m", input="1+1?", text_format=Answer)
        assert response.output_parsed == Answer(value=2)
    await client.close()
    chat_span, responses_span = recording_store.spans
    assert (chat_span.name, responses_span.name) == ("openai.chat.completion", "openai.responses")
    for span in (chat_span, responses_span):
        assert span.attributes["gen_ai.completion.0.content"] == '{"value": 2}'
    assert len(TracerTraceToTriplet().adapt(recording_store.spans)) == 2
