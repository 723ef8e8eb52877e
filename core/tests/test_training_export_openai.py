"""The chat exports (``messages``, ``openai-chat``) are OpenAI chat fine-tuning JSONL: checked line by line against the
format's rules on a two-call tool conversation, as the openai instrumentation and agent frameworks record it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import anyio
import pytest
from agentlightning.store.engine import EngineLightningStore
from agentlightning.testing.store import make_span
from agentlightning.training import export_traces
from agentlightning_memory.backend import MemoryBackend

ROLES = {"system", "developer", "user", "assistant", "tool"}


def check_fine_tuning_line(line: Dict[str, Any]) -> None:
    """OpenAI's chat fine-tuning record: ``messages`` (each with a known role; text content, or an assistant's
    ``tool_calls`` of ``{"id", "type": "function", "function": {"name", "arguments": <JSON text>}}``; a tool message
    answers a call by ``tool_call_id``), the last an assistant's; ``tools``, when present, a list of functions."""
    messages = line["messages"]
    assert isinstance(messages, list) and messages, line
    calls_made = set()
    for message in messages:
        role = message["role"]
        assert role in ROLES, message
        if role == "assistant" and message.get("tool_calls"):
            assert message.get("content") is None or isinstance(message["content"], str)
            for call in message["tool_calls"]:
                assert isinstance(call["id"], str) and call["type"] == "function", call
                assert isinstance(call["function"]["name"], str), call
                arguments = call["function"]["arguments"]
                assert isinstance(arguments, str), call
                json.loads(arguments)
                calls_made.add(call["id"])
        else:
            assert isinstance(message.get("content"), str), message
        if role == "tool":
            assert message["tool_call_id"] in calls_made, message
    assert messages[-1]["role"] == "assistant"
    if "tools" in line:
        assert isinstance(line["tools"], list) and line["tools"], line
        for tool in line["tools"]:
            assert tool["type"] == "function" and isinstance(tool["function"]["name"], str), tool


def _llm(rid: str, aid: str, seq: int, attributes: Dict[str, Any], **kwargs: Any) -> Any:
    return make_span(rid, aid, seq, name="openai.chat.completion", attributes=attributes, **kwargs)


async def _tool_conversation(store: EngineLightningStore) -> None:
    """Call 1 asks for a tool (the openai instrumentation's attributes); call 2 gets the tool's answer and replies.
    Call 3 is an agent framework's: its tool call is a ``tool.*`` child span whose arguments were flattened."""
    started = await store.start_rollout({"q": "weather"})
    rid, aid = started.rollout_id, started.attempt.attempt_id
    tools = {
        "gen_ai.request.functions.0.name": "get_weather",
        "gen_ai.request.functions.0.parameters": '{"type": "object", "properties": {"city": {"type": "string"}}}',
    }
    asked = {
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "You answer weather questions.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Weather in Paris?",
    }
    first = _llm(rid, aid, 1, {
        **tools, **asked,
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.tool_calls.0.id": "call-1",
        "gen_ai.completion.0.tool_calls.0.name": "get_weather",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Paris"}',
    })  # fmt: skip
    second = _llm(rid, aid, 2, {
        **tools, **asked,
        "gen_ai.prompt.2.role": "assistant",
        "gen_ai.prompt.2.tool_calls.0.id": "call-1",
        "gen_ai.prompt.2.tool_calls.0.name": "get_weather",
        "gen_ai.prompt.2.tool_calls.0.arguments": '{"city": "Paris"}',
        "gen_ai.prompt.3.role": "tool",
        "gen_ai.prompt.3.tool_call_id": "call-1",
        "gen_ai.prompt.3.content": "sunny, 21 C",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Sunny and 21 C in Paris.",
    })  # fmt: skip
    third = _llm(rid, aid, 3, {**asked, "gen_ai.completion.0.role": "assistant"}, span_id="c" * 16)  # no tools
    tool = make_span(rid, aid, 4, name="tool.get_weather", parent_id="c" * 16, attributes={
        "tool.name": "get_weather", "tool.call.id": "call-2", "tool.parameters.city": "Lyon",
    })  # fmt: skip
    await store.add_many_spans([first, second, third, tool])


@pytest.mark.parametrize("fmt", ["messages", "openai-chat"])
def test_chat_exports_are_openai_fine_tuning_jsonl(fmt: str, tmp_path: Path) -> None:
    async def main() -> List[Dict[str, Any]]:
        store = EngineLightningStore(MemoryBackend(), watchdog_interval=None)
        try:
            await _tool_conversation(store)
            path = tmp_path / "chat.jsonl"
            await export_traces(store, str(path), format=fmt)
            return [json.loads(line) for line in path.read_text().splitlines()]
        finally:
            await store.close()

    lines = anyio.run(main)
    assert len(lines) == 3
    for line in lines:
        check_fine_tuning_line(line)
    first, second, third = lines
    assert first["messages"][-1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert second["messages"][3] == {"role": "tool", "content": "sunny, 21 C", "tool_call_id": "call-1"}
    assert json.loads(third["messages"][-1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Lyon"}
    assert first["tools"][0]["function"]["parameters"]["properties"] == {"city": {"type": "string"}}
    assert "tools" not in third  # not null: a call that offered no tools has none


async def _conversation_without_ids(store: EngineLightningStore) -> str:
    """The tool conversation as a framework that records no call ids leaves it: the call (and its repeat in the next
    call's prompt) has no id, the tool's answer no ``tool_call_id``; a ``tool.*`` child span has no ``tool.call.id``."""
    started = await store.start_rollout({"q": "weather"})
    rid, aid = started.rollout_id, started.attempt.attempt_id
    asked = {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Weather in Paris?"}
    call = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    first = _llm(rid, aid, 1, {
        **asked, "gen_ai.completion.0.role": "assistant",
        **{f"gen_ai.completion.0.tool_calls.0.{k}": v for k, v in call.items()},
    })  # fmt: skip
    second = _llm(rid, aid, 2, {
        **asked, "gen_ai.prompt.1.role": "assistant",
        **{f"gen_ai.prompt.1.tool_calls.0.{k}": v for k, v in call.items()},
        "gen_ai.prompt.2.role": "tool", "gen_ai.prompt.2.content": "sunny",
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Sunny.",
    })  # fmt: skip
    third = _llm(rid, aid, 3, {**asked, "gen_ai.completion.0.role": "assistant"}, span_id="c" * 16)
    tool = make_span(rid, aid, 4, name="tool.get_weather", parent_id="c" * 16, attributes={
        "tool.name": "get_weather", "tool.parameters.city": "Lyon",
    })  # fmt: skip
    await store.add_many_spans([first, second, third, tool])
    return rid


@pytest.mark.parametrize("fmt", ["messages", "openai-chat"])
def test_tool_calls_recorded_without_ids_get_stable_ids_their_answers_match(fmt: str, tmp_path: Path) -> None:
    async def main() -> List[List[Dict[str, Any]]]:
        store = EngineLightningStore(MemoryBackend(), watchdog_interval=None)
        try:
            await _conversation_without_ids(store)
            await _conversation_without_ids(store)  # another rollout, the same calls
            exports = []
            for n in range(2):
                path = tmp_path / f"chat{n}.jsonl"
                await export_traces(store, str(path), format=fmt)
                exports.append([json.loads(line) for line in path.read_text().splitlines()])
            return exports
        finally:
            await store.close()

    lines, again = anyio.run(main)
    assert lines == again  # deterministic
    assert len(lines) == 6
    for line in lines:
        check_fine_tuning_line(line)  # every call has a text id, every tool message answers one
    first, second, third = lines[:3]
    call_id = first["messages"][-1]["tool_calls"][0]["id"]
    assert call_id.startswith("call_")
    assert second["messages"][1]["tool_calls"][0]["id"] == call_id  # the same call, repeated as history
    assert second["messages"][2] == {"role": "tool", "content": "sunny", "tool_call_id": call_id}
    assert third["messages"][-1]["tool_calls"][0]["id"] not in (None, call_id)
    assert lines[3]["messages"][-1]["tool_calls"][0]["id"] != call_id  # another rollout's call, another id


def _call(name: str, call_id: Any = None) -> Dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def test_call_ids_keep_recorded_ids_and_tell_repeated_calls_apart() -> None:
    from agentlightning.training.call_ids import with_call_ids

    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [_call("a", "given"), _call("b"), _call("b")]},
        {"role": "tool", "content": "1", "tool_call_id": "given"},
        {"role": "tool", "content": "2"},
        {"role": "tool", "content": "3", "tool_call_id": None},
        {"role": "assistant", "content": None, "tool_calls": [_call("b")]},  # the same call again, a later turn
        {"role": "tool", "content": "4"},
        {"role": "user", "content": "more"},
        {"role": "tool", "content": "orphan"},  # answers no call of the message before: left as it is
    ]
    before = json.dumps(messages)
    out = with_call_ids(messages, "r1", "a1")
    assert json.dumps(messages) == before  # the input is not changed
    calls = out[1]["tool_calls"]
    assert calls[0]["id"] == "given"
    ids = [calls[1]["id"], calls[2]["id"], out[5]["tool_calls"][0]["id"]]
    assert len(set(ids)) == 3 and all(i.startswith("call_") for i in ids)
    assert [m.get("tool_call_id") for m in out[2:5]] == ["given", ids[0], ids[1]]
    assert out[6]["tool_call_id"] == ids[2]
    assert "tool_call_id" not in out[8]
    assert with_call_ids(out, "r1", "a1") == out  # ids once given stay
    assert with_call_ids(messages[:5], "r1", "a1") == out[:5]  # a later record repeating this history agrees
    assert with_call_ids(messages, "r2", "a1")[1]["tool_calls"][1]["id"] != ids[0]
