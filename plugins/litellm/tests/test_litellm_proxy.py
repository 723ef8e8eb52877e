"""Calls from the real ``openai`` client (and raw HTTP) through the proxy to a vLLM-like backend land in the store."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Callable, Dict, List, Optional

import anyio
import httpx
import openai
import pytest
from agentlightning.adapter import LlmProxyTraceToTriplet, TracerTraceToTriplet
from llmproxy_helpers import expected_chat_ids, expected_text_ids, proxy_spans, roots

pytestmark = pytest.mark.anyio


async def _attempt(store: Any) -> tuple[str, str]:
    rollout = await store.start_rollout(input="task")
    return rollout.rollout_id, rollout.attempt.attempt_id


@pytest.fixture
async def client_for(proxy: Any) -> AsyncIterator[Callable[..., openai.AsyncOpenAI]]:
    """``client_for(rollout_id, attempt_id)``: an openai client bound to that attempt (closed after the test); no
    retries unless asked, so that every error the proxy answers reaches the test."""
    made: List[openai.AsyncOpenAI] = []

    def make(
        rollout_id: Optional[str] = None, attempt_id: Optional[str] = None, *, retries: int = 0, timeout: float = 60
    ) -> openai.AsyncOpenAI:
        url = proxy.as_resource().get_base_url(rollout_id, attempt_id)
        if rollout_id is None:
            url += "/v1"
        made.append(openai.AsyncOpenAI(base_url=url, api_key="agent-key", max_retries=retries, timeout=timeout))
        return made[-1]

    yield make
    for client in made:
        await client.close()


async def _chat(client: openai.AsyncOpenAI, text: str, stream: bool) -> Dict[str, Any]:
    """One call; returns what the agent saw: text, prompt ids, response ids, response id."""
    messages = [{"role": "user", "content": text}]
    if not stream:
        c = await client.chat.completions.create(model="policy", messages=messages)  # type: ignore[arg-type]
        return {
            "text": c.choices[0].message.content,
            "prompt_ids": (c.model_extra or {}).get("prompt_token_ids"),
            "response_ids": (c.choices[0].model_extra or {}).get("token_ids"),
            "id": c.id,
            "chunks": 0,
        }
    pieces: List[str] = []
    prompt_ids = None
    response_ids: List[int] = []
    chunks = 0
    response_id = None
    stream_ = await client.chat.completions.create(model="policy", messages=messages, stream=True)  # type: ignore[arg-type]
    async for chunk in stream_:
        chunks += 1
        response_id = chunk.id
        prompt_ids = prompt_ids or (chunk.model_extra or {}).get("prompt_token_ids")
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            response_ids.extend((choice.model_extra or {}).get("token_ids") or [])
    return {
        "text": "".join(pieces),
        "prompt_ids": prompt_ids,
        "response_ids": response_ids,
        "id": response_id,
        "chunks": chunks,
    }


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_chat_call_is_recorded_with_the_backend_token_ids(
    proxy: Any, store: Any, client_for: Any, stream: bool
) -> None:
    rollout_id, attempt_id = await _attempt(store)
    seen = await _chat(client_for(rollout_id, attempt_id), "hello proxy world", stream)
    prompt_ids, response_ids = expected_chat_ids([{"role": "user", "content": "hello proxy world"}])
    assert seen["text"] == "echo: hello proxy world"
    assert (seen["prompt_ids"], seen["response_ids"]) == (prompt_ids, response_ids)  # the agent sees vLLM's fields
    if stream:
        assert seen["chunks"] >= 4  # streamed to the agent piece by piece, not converted to one response

    spans = await proxy_spans(store, rollout_id, attempt_id, 1)
    (root,) = roots(spans)
    assert (root.rollout_id, root.attempt_id, root.sequence_id) == (rollout_id, attempt_id, 1)
    assert root.status.status_code == "OK"
    assert root.attributes["prompt_token_ids"] == prompt_ids
    assert root.attributes["response_token_ids"] == response_ids
    assert root.attributes["gen_ai.prompt.0.content"] == "hello proxy world"
    assert root.attributes["gen_ai.completion.0.content"] == "echo: hello proxy world"
    assert root.attributes["gen_ai.request.streaming"] is stream
    raw = next(s for s in spans if s.name == "raw_gen_ai_request")
    assert raw.parent_id == root.span_id and raw.sequence_id == 1
    assert raw.attributes["llm.hosted_vllm.prompt_token_ids"] == prompt_ids
    assert raw.attributes["llm.hosted_vllm.response_token_ids"] == response_ids


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_text_completion_is_recorded_with_token_ids(
    proxy: Any, store: Any, client_for: Any, stream: bool
) -> None:
    rollout_id, attempt_id = await _attempt(store)
    client = client_for(rollout_id, attempt_id)
    if stream:
        text = ""
        async for chunk in await client.completions.create(model="policy", prompt="two plus two", stream=True):
            text += "".join(c.text or "" for c in chunk.choices)
    else:
        text = (await client.completions.create(model="policy", prompt="two plus two")).choices[0].text
    assert text == "echo: two plus two"
    (root,) = roots(await proxy_spans(store, rollout_id, attempt_id, 1))
    prompt_ids, response_ids = expected_text_ids("two plus two")
    if not stream:
        # Streamed, the test server sends a completion's prompt ids at the chunk's top level, which LiteLLM drops
        # (vLLM puts them on the choice, where they survive).
        assert root.attributes["prompt_token_ids"] == prompt_ids
    assert root.attributes["response_token_ids"] == response_ids
    assert root.attributes["agentlightning.proxy.api"] == "completion"


async def test_ten_concurrent_calls_get_their_own_sequence_ids_and_token_ids(
    proxy: Any, store: Any, client_for: Any
) -> None:
    await _eleven_at_once(proxy, store, client_for)


@pytest.mark.slow
@pytest.mark.parametrize("repeat", range(15))
async def test_bursts_of_new_connections_all_reach_the_proxy(
    proxy: Any, store: Any, client_for: Any, repeat: int
) -> None:
    """The reproducer of a request once seen lost in a burst of eleven new connections (about one full test run in
    15); without retries, any lost request fails here."""
    await _eleven_at_once(proxy, store, client_for)


async def _eleven_at_once(proxy: Any, store: Any, client_for: Any) -> None:
    """Ten calls of one attempt (half streamed) and one of another, on eleven simultaneous new connections, without
    client retries: each call is answered and recorded once, with its own sequence id and token ids."""
    rollout_id, attempt_id = await _attempt(store)
    other_rollout, other_attempt = await _attempt(store)
    client = client_for(rollout_id, attempt_id, retries=0, timeout=30)
    other = client_for(other_rollout, other_attempt, retries=0, timeout=30)
    seen: Dict[str, Dict[str, Any]] = {}

    async def one(i: int) -> None:
        seen[f"call {i}"] = await _chat(client, f"call {i}", stream=i % 2 == 1)

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(one, i)
        tg.start_soon(_chat, other, "elsewhere", True)

    spans = await proxy_spans(store, rollout_id, attempt_id, 10)
    calls = roots(spans)
    assert len(calls) == 10
    assert sorted(s.sequence_id for s in calls) == list(range(1, 11))
    assert all((s.rollout_id, s.attempt_id) == (rollout_id, attempt_id) for s in spans)
    for span in calls:
        text = span.attributes["gen_ai.prompt.0.content"]
        prompt_ids, response_ids = expected_chat_ids([{"role": "user", "content": text}])
        assert span.attributes["prompt_token_ids"] == prompt_ids == seen[text]["prompt_ids"]
        assert span.attributes["response_token_ids"] == response_ids == seen[text]["response_ids"]
    (elsewhere,) = roots(await proxy_spans(store, other_rollout, other_attempt, 1))
    assert (elsewhere.rollout_id, elsewhere.attempt_id, elsewhere.sequence_id) == (other_rollout, other_attempt, 1)

    for triplets in (
        LlmProxyTraceToTriplet().adapt(spans),
        TracerTraceToTriplet(llm_call_match=r"litellm_request").adapt(spans),
    ):
        assert len(triplets) == 10
        by_response = {tuple(t.response["token_ids"]): t for t in triplets}
        for text, call in seen.items():
            triplet = by_response[tuple(call["response_ids"])]
            assert triplet.prompt["token_ids"] == call["prompt_ids"]


async def test_backend_errors_reach_the_agent_with_their_status_and_are_recorded(
    proxy: Any, store: Any, client_for: Any
) -> None:
    rollout_id, attempt_id = await _attempt(store)
    client = client_for(rollout_id, attempt_id)
    with pytest.raises(openai.RateLimitError) as rate:
        await client.chat.completions.create(model="policy", messages=[{"role": "user", "content": "!status 429"}])
    assert rate.value.status_code == 429
    with pytest.raises(openai.BadRequestError) as context:
        await client.chat.completions.create(model="policy", messages=[{"role": "user", "content": "!context"}])
    assert context.value.code == "context_length_exceeded"
    assert "maximum context length" in str(context.value)
    with pytest.raises(openai.APIStatusError) as timeout:  # LiteLLM's per-call timeout, passed in the body
        await client.chat.completions.create(
            model="policy", messages=[{"role": "user", "content": "!slow"}], extra_body={"timeout": 0.3}
        )
    assert timeout.value.status_code == 408
    with pytest.raises(openai.APIStatusError) as streamed:  # a stream that fails before its first chunk
        await client.chat.completions.create(
            model="policy", messages=[{"role": "user", "content": "!status 503"}], stream=True
        )
    assert streamed.value.status_code == 503

    calls = sorted(roots(await proxy_spans(store, rollout_id, attempt_id, 4)), key=lambda s: s.sequence_id)
    assert [s.attributes["http.response.status_code"] for s in calls] == [429, 400, 408, 503]
    assert [s.attributes["error.type"] for s in calls] == [
        "rate_limit_error", "context_length_exceeded", "timeout", "api_error",
    ]  # fmt: skip
    assert all(s.status.status_code == "ERROR" and s.events[0].name == "exception" for s in calls)
    assert "maximum context length" in (calls[1].status.description or "")


async def test_bare_paths_are_served_but_not_recorded(proxy: Any, store: Any, client_for: Any) -> None:
    client = client_for()
    reply = await client.chat.completions.create(model="policy", messages=[{"role": "user", "content": "bare"}])
    assert reply.choices[0].message.content == "echo: bare"
    async with httpx.AsyncClient() as http:
        stats = (await http.get(proxy.endpoint + "/agl/stats")).json()
    assert stats["unrecorded"] >= 1


async def test_anthropic_messages_plain_and_streamed(proxy: Any, store: Any) -> None:
    rollout_id, attempt_id = await _attempt(store)
    url = proxy.as_resource().get_base_url(rollout_id, attempt_id) + "/v1/messages"
    body = {"model": "policy", "max_tokens": 64, "system": "be brief", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=30) as http:
        plain = await http.post(url, json=body)
        assert plain.status_code == 200
        assert plain.json()["content"][0]["text"] == "echo: hi"
        async with http.stream("POST", url, json={**body, "stream": True}) as streamed:
            assert streamed.status_code == 200
            assert streamed.headers["content-type"].startswith("text/event-stream")
            raw = (await streamed.aread()).decode()
        assert "message_start" in raw and "content_block_delta" in raw and "message_stop" in raw
    calls = sorted(roots(await proxy_spans(store, rollout_id, attempt_id, 2)), key=lambda s: s.sequence_id)
    for span, streaming in zip(calls, (False, True)):
        assert span.attributes["agentlightning.proxy.api"] == "anthropic"
        assert span.attributes["gen_ai.prompt.0.role"] == "system"
        assert span.attributes["gen_ai.prompt.1.content"] == "hi"
        assert span.attributes["gen_ai.completion.0.content"] == "echo: hi"
        assert span.attributes["gen_ai.request.streaming"] is streaming
        # LiteLLM serves the Anthropic route by a chat completion to the vLLM-like backend; its token ids are kept
        messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
        prompt_ids, response_ids = expected_chat_ids(messages)
        assert span.attributes["prompt_token_ids"] == prompt_ids
        assert span.attributes["response_token_ids"] == response_ids
    assert len(LlmProxyTraceToTriplet().adapt(await store.query_spans(rollout_id))) == 2


async def test_responses_api_is_served_by_chat_completions_with_token_ids(proxy: Any, store: Any) -> None:
    rollout_id, attempt_id = await _attempt(store)
    base = proxy.as_resource().get_base_url(rollout_id, attempt_id) + "/v1"
    client = openai.AsyncOpenAI(base_url=base, api_key="k", max_retries=0)
    tools: Any = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    plain = await client.responses.create(model="policy", input="hi", instructions="be brief")
    assert plain.output_text == "echo: hi" and plain.usage is not None and plain.usage.input_tokens > 0
    called = await client.responses.create(model="policy", input="!tool", tools=tools)
    (call,) = called.output
    assert call.type == "function_call" and (call.name, json.loads(call.arguments)) == ("f", {"x": 1})
    async with client.responses.stream(model="policy", input=[{"role": "user", "content": "yo"}]) as stream:
        assert (await stream.get_final_response()).output_text == "echo: yo"
    await client.close()

    calls = sorted(roots(await proxy_spans(store, rollout_id, attempt_id, 3)), key=lambda s: s.sequence_id)
    assert [s.attributes["agentlightning.proxy.api"] for s in calls] == ["responses"] * 3
    assert [s.attributes["gen_ai.request.streaming"] for s in calls] == [False, False, True]
    first, second, third = calls
    prompt_ids, response_ids = expected_chat_ids(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    )
    assert (first.attributes["prompt_token_ids"], first.attributes["response_token_ids"]) == (prompt_ids, response_ids)
    assert second.attributes["gen_ai.completion.0.tool_calls.0.name"] == "f" and second.attributes["response_token_ids"]
    assert third.attributes["gen_ai.completion.0.content"] == "echo: yo"
    assert third.attributes["prompt_token_ids"] == expected_chat_ids([{"role": "user", "content": "yo"}])[0]
    triplets = LlmProxyTraceToTriplet().adapt(await store.query_spans(rollout_id))
    assert len(triplets) == 3 and all(t.prompt["token_ids"] and t.response["token_ids"] for t in triplets)


async def test_responses_tool_round_trip_streamed_records_token_ids(proxy: Any, store: Any) -> None:
    """A Responses agent's tool loop, both calls streamed (``create(stream=True)`` and the stream manager): each
    call is recorded with its tool call or tool result and the backend's token ids."""
    rollout_id, attempt_id = await _attempt(store)
    base = proxy.as_resource().get_base_url(rollout_id, attempt_id) + "/v1"
    client = openai.AsyncOpenAI(base_url=base, api_key="k", max_retries=0)
    tools: Any = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    items: List[Any] = [{"role": "user", "content": "!tool"}]
    first = None
    async for event in await client.responses.create(model="policy", input=items, tools=tools, stream=True):
        if event.type == "response.completed":
            first = event.response
    assert first is not None
    (call,) = [o for o in first.output if o.type == "function_call"]
    items += [o.model_dump(exclude_none=True) for o in first.output]
    items += [{"type": "function_call_output", "call_id": call.call_id, "output": "42"}]
    async with client.responses.stream(model="policy", input=items, tools=tools) as stream:
        assert (await stream.get_final_response()).output_text == "echo: !tool"
    await client.close()

    calls = sorted(roots(await proxy_spans(store, rollout_id, attempt_id, 2)), key=lambda s: s.sequence_id)
    assert [s.attributes["gen_ai.request.streaming"] for s in calls] == [True, True]
    one, two = (c.attributes for c in calls)
    assert one["gen_ai.completion.0.tool_calls.0.name"] == "f"
    assert (two["gen_ai.prompt.1.tool_calls.0.id"], two["gen_ai.prompt.2.role"]) == (call.call_id, "tool")
    assert two["gen_ai.prompt.2.content"] == "42"
    triplets = LlmProxyTraceToTriplet().adapt(await store.query_spans(rollout_id))
    assert len(triplets) == 2 and all(t.prompt["token_ids"] and t.response["token_ids"] for t in triplets)


async def test_bad_requests_get_clear_errors(proxy: Any, store: Any) -> None:
    rollout_id, attempt_id = await _attempt(store)
    base = proxy.as_resource().get_base_url(rollout_id, attempt_id)
    async with httpx.AsyncClient(timeout=30) as http:
        unknown = await http.post(base + "/v1/chat/completions", json={"model": "gpt-9", "messages": []})
        assert unknown.status_code == 400
        assert "model 'gpt-9' is not served by this proxy (available: policy)" in unknown.json()["error"]["message"]
        not_json = await http.post(base + "/v1/chat/completions", content=b"{nope")
        assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]["message"]
        missing = await http.post(base + "/v1/embeddings", json={})
        assert missing.status_code == 404
        models = (await http.get(proxy.endpoint + "/v1/models")).json()
        assert [m["id"] for m in models["data"]] == ["policy"]
        assert (await http.get(proxy.endpoint + "/health")).json() == {"status": "ok"}


async def test_logprobs_are_recorded_when_asked(proxy: Any, store: Any, client_for: Any) -> None:
    rollout_id, attempt_id = await _attempt(store)
    client = client_for(rollout_id, attempt_id)
    reply = await client.chat.completions.create(
        model="policy", messages=[{"role": "user", "content": "lp"}], logprobs=True
    )
    assert reply.choices[0].logprobs is not None
    (root,) = roots(await proxy_spans(store, rollout_id, attempt_id, 1))
    logprobs = json.loads(root.attributes["logprobs.content"])
    assert [entry["bytes"][0] for entry in logprobs] == root.attributes["response_token_ids"]


async def test_an_agent_that_hangs_up_mid_stream_is_still_recorded(proxy: Any, store: Any, client_for: Any) -> None:
    rollout_id, attempt_id = await _attempt(store)
    client = client_for(rollout_id, attempt_id)
    words = " ".join(f"w{i}" for i in range(200))
    stream = await client.chat.completions.create(
        model="policy", messages=[{"role": "user", "content": words}], stream=True
    )
    async for _ in stream:
        break
    await stream.close()
    (root,) = roots(await proxy_spans(store, rollout_id, attempt_id, 1))
    assert root.attributes["gen_ai.request.streaming"] is True
    assert root.attributes["prompt_token_ids"] == expected_chat_ids([{"role": "user", "content": words}])[0]
    reply = await client.chat.completions.create(model="policy", messages=[{"role": "user", "content": "after"}])
    assert reply.choices[0].message.content == "echo: after"  # the proxy is fine


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "policy", "messages": "hello"}, "Invalid type for 'messages'"),
        ({"model": "policy"}, "Missing required parameter: 'messages'"),
        ({"model": "policy", "messages": []}, "empty array"),
        ({"model": "policy", "messages": ["hi"]}, "'messages[0]'"),
        ({"model": "policy", "messages": [{"content": "hi"}]}, "'messages[0].role'"),
        ({"model": "policy", "messages": [{"role": "user", "content": 5}]}, "'messages[0].content'"),
    ],
)
async def test_malformed_chat_requests_are_refused_with_openai_errors(
    proxy: Any, store: Any, body: Dict[str, Any], message: str
) -> None:
    rollout_id, attempt_id = await _attempt(store)
    base = proxy.as_resource().get_base_url(rollout_id, attempt_id)
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(base + "/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]


async def test_the_openai_client_does_not_retry_a_malformed_request(proxy: Any, store: Any, client_for: Any) -> None:
    rollout_id, attempt_id = await _attempt(store)
    client = client_for(rollout_id, attempt_id, retries=2)
    with pytest.raises(openai.BadRequestError, match="messages"):
        await client.chat.completions.create(model="policy", messages="hello")  # type: ignore[arg-type]


async def test_anthropic_tool_use_is_recorded_as_tool_calls_with_token_ids(proxy: Any, store: Any) -> None:
    rollout_id, attempt_id = await _attempt(store)
    url = proxy.as_resource().get_base_url(rollout_id, attempt_id) + "/v1/messages"
    tools = [{"name": "f", "description": "d", "input_schema": {"type": "object"}}]
    body = {"model": "policy", "max_tokens": 64, "tools": tools, "messages": [{"role": "user", "content": "!tool"}]}
    async with httpx.AsyncClient(timeout=30) as http:
        plain = (await http.post(url, json=body)).json()
        async with http.stream("POST", url, json={**body, "stream": True}) as streamed:
            raw = (await streamed.aread()).decode()
    (use,) = [b for b in plain["content"] if b["type"] == "tool_use"]
    assert (use["name"], use["input"]) == ("f", {"x": 1}) and "input_json_delta" in raw
    calls = sorted(roots(await proxy_spans(store, rollout_id, attempt_id, 2)), key=lambda s: s.sequence_id)
    for span in calls:
        assert span.attributes["gen_ai.completion.0.tool_calls.0.name"] == "f"
        assert json.loads(span.attributes["gen_ai.completion.0.tool_calls.0.arguments"]) == {"x": 1}
        assert span.attributes["gen_ai.completion.0.finish_reason"] == "tool_calls"
        assert span.attributes["gen_ai.request.functions.0.name"] == "f"
        assert span.attributes["prompt_token_ids"] and span.attributes["response_token_ids"]
