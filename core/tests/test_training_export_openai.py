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
