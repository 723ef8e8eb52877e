"""The local OpenAI-compatible server, driven by the real openai client."""

from __future__ import annotations

import concurrent.futures
import json
from typing import Any, Dict, List

import httpx
import pytest
from agentlightning.testing.openai_server import (
    ErrorReply,
    OpenAITestServer,
    Reply,
    ScriptedHandler,
    ToolCall,
    fake_detokenize,
    fake_tokenize,
    render_prompt,
)

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.network

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]


def client(server: OpenAITestServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)


def test_base_url_is_loopback_with_a_free_port() -> None:
    with OpenAITestServer() as a, OpenAITestServer() as b:
        assert a.base_url.startswith("http://127.0.0.1:") and a.base_url.endswith("/v1")
        assert a.port != b.port
    with pytest.raises(RuntimeError, match="not running"):
        _ = a.base_url


def test_echo_by_default_with_usage(openai_server: OpenAITestServer) -> None:
    response = client(openai_server).chat.completions.create(model="m", messages=MESSAGES)
    assert response.choices[0].message.content == "echo: Say hello"
    assert response.choices[0].finish_reason == "stop"
    prompt = render_prompt({"messages": MESSAGES})
    assert response.usage is not None
    assert response.usage.prompt_tokens == len(fake_tokenize(prompt))
    assert response.usage.completion_tokens == len(fake_tokenize("echo: Say hello"))
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    assert "prompt_token_ids" not in (response.model_extra or {})


def test_token_ids_when_asked(openai_server: OpenAITestServer) -> None:
    response = client(openai_server).chat.completions.create(
        model="m", messages=MESSAGES, extra_body={"return_token_ids": True}
    )
    extra = response.model_extra or {}
    assert extra["prompt_token_ids"] == fake_tokenize(render_prompt({"messages": MESSAGES}))
    assert fake_detokenize(response.choices[0].model_extra["token_ids"]) == "echo: Say hello"
    assert openai_server.requests[-1].body["return_token_ids"] is True


def test_streaming_matches_the_non_streamed_answer(openai_server: OpenAITestServer) -> None:
    openai_server.handler = lambda request: "one two three"
    stream = client(openai_server).chat.completions.create(
        model="m",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"return_token_ids": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    ids = [t for c in chunks if c.choices for t in c.choices[0].model_extra.get("token_ids", [])]
    assert text == "one two three"
    assert ids == fake_tokenize("one two three")
    assert chunks[0].model_extra["prompt_token_ids"] == fake_tokenize(render_prompt({"messages": MESSAGES}))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(ids)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_tool_calls_plain_and_streamed(openai_server: OpenAITestServer) -> None:
    openai_server.handler = lambda request: Reply(
        tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1"), ToolCall("get_time", "{}")]
    )
    c = client(openai_server)
    message = c.chat.completions.create(model="m", messages=MESSAGES).choices[0].message
    assert [(t.id, t.function.name, json.loads(t.function.arguments)) for t in message.tool_calls or []] == [
        ("call_1", "get_weather", {"city": "Paris"}),
        (message.tool_calls[1].id, "get_time", {}),
    ]
    chunks = list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    streamed = [t for ch in chunks if ch.choices for t in ch.choices[0].delta.tool_calls or []]
    assert [(t.index, t.function.name) for t in streamed] == [(0, "get_weather"), (1, "get_time")]
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "tool_calls"


def test_error_replies_and_handler_bugs(openai_server: OpenAITestServer) -> None:
    c = client(openai_server)
    openai_server.handler = lambda request: ErrorReply(429, "slow down", "rate_limit_error")
    with pytest.raises(openai.RateLimitError, match="slow down"):
        c.chat.completions.create(model="m", messages=MESSAGES)

    def broken(request: dict) -> str:
        raise KeyError("oops")

    openai_server.handler = broken
    with pytest.raises(openai.InternalServerError, match="KeyError"):
        c.chat.completions.create(model="m", messages=MESSAGES)
    openai_server.handler = lambda request: 42  # type: ignore[assignment,return-value]
    with pytest.raises(openai.InternalServerError, match="must return"):
        c.chat.completions.create(model="m", messages=MESSAGES)


def test_bad_requests_get_400(openai_server: OpenAITestServer) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        openai_server.base_url + "/chat/completions", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400
    info.value.close()  # the error holds the open response
    with pytest.raises(openai.BadRequestError, match="messages"):
        client(openai_server).post("/chat/completions", body={"model": "m"}, cast_to=object)


def test_scripted_handler_in_order() -> None:
    handler = ScriptedHandler(["first", Reply(content="second")], repeat_last=False)
    with OpenAITestServer(handler) as server:
        c = client(server)
        answers = [c.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content for _ in range(2)]
        assert answers == ["first", "second"]
        with pytest.raises(openai.InternalServerError, match="ran out"):
            c.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(ValueError):
        ScriptedHandler([])


def test_rule_based_handler_and_raw_dict(openai_server: OpenAITestServer) -> None:
    def handler(request: dict) -> object:
        if request["messages"][-1]["content"] == "raw":
            return {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}
        return "upper: " + request["messages"][-1]["content"].upper()

    openai_server.handler = handler  # type: ignore[assignment]
    c = client(openai_server)
    assert (
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "ab"}]).choices[0].message.content
        == "upper: AB"
    )
    assert c.chat.completions.create(model="m", messages=[{"role": "user", "content": "raw"}]).choices == []


def test_completions_and_models(openai_server: OpenAITestServer) -> None:
    c = client(openai_server)
    response = c.completions.create(model="m", prompt="abc", extra_body={"return_token_ids": True})
    assert response.choices[0].text == "echo: abc"
    assert response.model_extra["prompt_token_ids"] == fake_tokenize("abc")
    streamed = "".join(
        ch.choices[0].text for ch in c.completions.create(model="m", prompt="a b", stream=True) if ch.choices
    )
    assert streamed == "echo: a b"
    assert [m.id for m in c.models.list()] == ["test-model"]
    assert [r.path for r in openai_server.requests][-1] == "/v1/models"


def test_concurrent_requests_are_all_answered_and_recorded(openai_server: OpenAITestServer) -> None:
    c = client(openai_server)

    def ask(i: int) -> str:
        return (
            c.chat.completions.create(model="m", messages=[{"role": "user", "content": str(i)}])
            .choices[0]
            .message.content
            or ""
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(24)))
    assert answers == [f"echo: {i}" for i in range(24)]
    assert len(openai_server.requests) == 24
    ids = {r.body["messages"][0]["content"] for r in openai_server.requests}
    assert ids == {str(i) for i in range(24)}


@pytest.mark.anyio
async def test_async_client(openai_server: OpenAITestServer) -> None:
    c = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="test", max_retries=0)
    response = await c.chat.completions.create(model="m", messages=MESSAGES)
    assert response.choices[0].message.content == "echo: Say hello"
    chunks = [ch async for ch in await c.chat.completions.create(model="m", messages=MESSAGES, stream=True)]
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "echo: Say hello"
    await c.close()


# -- the other protocols: Responses, Anthropic Messages, Gemini ---------------------------------------------------


def _sse(text: str) -> List[Dict[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        if lines.get("data") != "[DONE]":
            data = json.loads(lines["data"])
            assert lines.get("event", data.get("type")) == data.get("type")
            events.append(data)
    return events


TOOL_REPLY = Reply(content="Checking.", reasoning="think", tool_calls=[ToolCall("f", {"x": 1}, id="c1")])


def test_anthropic_messages_plain_and_streamed(openai_server: OpenAITestServer) -> None:
    openai_server.handler = lambda body: TOOL_REPLY
    body = {"model": "claude", "max_tokens": 9, "system": "s", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=openai_server.root_url) as http:
        message = http.post("/v1/messages", json=body).json()
        assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
        assert message["content"][2] == {"type": "tool_use", "id": "c1", "name": "f", "input": {"x": 1}}
        assert message["stop_reason"] == "tool_use" and message["usage"]["input_tokens"] > 0
        events = _sse(http.post("/v1/messages", json={**body, "stream": True}).text)
    assert [e["type"] for e in events][:2] == ["message_start", "content_block_start"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use" and events[-1]["type"] == "message_stop"
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == "Checking."
    json_parts = [e["delta"]["partial_json"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"]
    assert json.loads("".join(json_parts)) == {"x": 1}


def test_responses_plain_and_streamed(openai_server: OpenAITestServer) -> None:
    openai_server.handler = lambda body: TOOL_REPLY
    body = {"model": "m", "input": [{"role": "user", "content": "hi"}], "instructions": "s"}
    with httpx.Client(base_url=openai_server.base_url) as http:
        response = http.post("/responses", json=body).json()
        events = _sse(http.post("/responses", json={**body, "stream": True}).text)
    assert [o["type"] for o in response["output"]] == ["reasoning", "message", "function_call"]
    assert response["output"][2]["call_id"] == "c1" and response["status"] == "completed"
    assert response["usage"]["total_tokens"] == response["usage"]["input_tokens"] + response["usage"]["output_tokens"]
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    strip = lambda items: [{k: v for k, v in o.items() if k != "id"} for o in items]  # noqa: E731
    assert strip(events[-1]["response"]["output"]) == strip(response["output"])
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == "Checking."


def test_gemini_generate_content_plain_and_streamed(openai_server: OpenAITestServer) -> None:
    openai_server.handler = lambda body: TOOL_REPLY
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    with httpx.Client(base_url=openai_server.root_url) as http:
        plain = http.post("/v1beta/models/g:generateContent", json=body).json()
        chunks = _sse(http.post("/v1beta/models/g:streamGenerateContent?alt=sse", json=body).text)
        missing = http.post("/v1beta/models/g:generateContent", json={"x": 1})
    parts = plain["candidates"][0]["content"]["parts"]
    assert parts == [
        {"text": "think", "thought": True},
        {"text": "Checking."},
        {"functionCall": {"id": "c1", "name": "f", "args": {"x": 1}}},
    ]
    assert plain["candidates"][0]["finishReason"] == "STOP" and plain["usageMetadata"]["promptTokenCount"] > 0
    assert "finishReason" in chunks[-1]["candidates"][0] and "finishReason" not in chunks[0]["candidates"][0]
    assert [p for c in chunks for p in c["candidates"][0]["content"]["parts"]][-1] == parts[-1]
    assert missing.status_code == 400 and "contents" in missing.json()["error"]["message"]


def test_echo_reads_every_protocol() -> None:
    from agentlightning.testing.openai_server import echo_handler, request_messages

    assert echo_handler({"input": "yo"}) == "echo: yo"
    assert echo_handler({"contents": [{"role": "user", "parts": [{"text": "g"}]}]}) == "echo: g"
    anthropic = {"system": "s", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}]}
    assert echo_handler(anthropic) == "echo: a"
    assert [m["role"] for m in request_messages(anthropic)] == ["system", "user"]
