"""TraceToMessages and LlmProxyTraceToTriplet."""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Optional

import pytest
from agentlightning.adapter import LlmProxyTraceToTriplet, TraceToMessages
from agentlightning.types.tracer import OtelResource, Span, TraceStatus


def make_span(name: str, attributes: Dict[str, Any], seq: int, parent_id: Optional[str] = None) -> Span:
    return Span(
        rollout_id="r",
        attempt_id="a",
        sequence_id=seq,
        trace_id="t",
        span_id=f"span-{seq}",
        parent_id=parent_id,
        name=name,
        status=TraceStatus(status_code="OK"),
        attributes=attributes,
        events=[],
        links=[],
        start_time=None,
        end_time=None,
        context=None,
        parent=None,
        resource=OtelResource(attributes={}, schema_url=""),
    )


SCHEMA = json.dumps({"type": "object", "properties": {"date": {"type": "string"}}})
ARGS = json.dumps({"date": "2025-10-13"})


def test_tool_calling_conversation_and_grader() -> None:
    spans = [
        make_span(
            "tool_call.rooms",
            {"tool.name": "rooms", "tool.parameters": ARGS, "tool.call.id": "call_1", "tool.call.type": "function"},
            0,
            parent_id="span-1",
        ),
        make_span(
            "openai.chat.completion",
            {
                "gen_ai.request.model": "m",
                "gen_ai.prompt.0.role": "system",
                "gen_ai.prompt.0.content": "Schedule.",
                "gen_ai.prompt.1.role": "user",
                "gen_ai.prompt.1.content": "Find a room.",
                "gen_ai.request.functions.0.name": "rooms",
                "gen_ai.request.functions.0.description": "List rooms",
                "gen_ai.request.functions.0.parameters": SCHEMA,
                "gen_ai.response.id": "c1",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.finish_reason": "tool_calls",
            },
            1,
        ),
        make_span(
            "openai.chat.completion",
            {
                "gen_ai.prompt.0.role": "system",
                "gen_ai.prompt.0.content": "Schedule.",
                "gen_ai.prompt.1.role": "assistant",
                "gen_ai.prompt.1.tool_calls.0.id": "call_1",
                "gen_ai.prompt.1.tool_calls.0.name": "rooms",
                "gen_ai.prompt.1.tool_calls.0.arguments": ARGS,
                "gen_ai.prompt.2.role": "tool",
                "gen_ai.prompt.2.content": "[]",
                "gen_ai.prompt.2.tool_call_id": "call_1",
                "gen_ai.prompt.2.name": "dropped for tool role",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "No room.",
            },
            2,
        ),
        make_span("unrelated", {"x": 1}, 3),
    ]
    call = {"id": "call_1", "type": "function", "function": {"name": "rooms", "arguments": ARGS}}
    assert TraceToMessages().adapt(spans) == [
        {
            "messages": [
                {"role": "system", "content": "Schedule."},
                {"role": "user", "content": "Find a room."},
                {"role": "assistant", "content": None, "tool_calls": [call]},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "rooms", "description": "List rooms", "parameters": json.loads(SCHEMA)},
                }
            ],
        },
        {
            "messages": [
                {"role": "system", "content": "Schedule."},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "content": "[]", "tool_call_id": "call_1"},
                {"role": "assistant", "content": "No room."},
            ],
            "tools": None,
        },
    ]


def test_missing_roles_are_inferred_or_skipped(caplog: pytest.LogCaptureFixture) -> None:
    span = make_span(
        "openai.chat.completion",
        {
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "Hi",
            "gen_ai.prompt.1.tool_calls.0.id": "c",
            "gen_ai.prompt.1.tool_calls.0.name": "f",
            "gen_ai.prompt.1.tool_calls.0.arguments": "{}",
            "gen_ai.prompt.2.tool_call_id": "c",
            "gen_ai.prompt.2.content": "1",
            "gen_ai.prompt.3.unexpected": "noise",
            "gen_ai.completion.0.content": "Done",
        },
        0,
    )
    with caplog.at_level(logging.WARNING, logger="agentlightning.adapter.messages"):
        (record,) = TraceToMessages().adapt([span])
    assert [m["role"] for m in record["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert any("no inferable role hint" in r.getMessage() for r in caplog.records)


def test_wrong_shapes_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="gen_ai.request"):
        TraceToMessages().adapt([make_span("x", {"gen_ai.request.0": "a"}, 0)])


def llm_proxy_span(seq: int, name: str = "raw_gen_ai_request", rid: Optional[str] = None, **attrs: Any) -> Span:
    base: Dict[str, Any] = {}
    if name == "raw_gen_ai_request":
        base = {
            "llm.hosted_vllm.prompt_token_ids": str([seq, seq]),
            "llm.hosted_vllm.response_token_ids": [[seq + 100]],
        }
    if rid is not None:
        base["gen_ai.response.id"] = rid
    base.update(attrs)
    return make_span(name, base, seq)


def reward_span(seq: int, value: Optional[float]) -> Span:
    attrs = {} if value is None else {"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": value}
    return make_span("agentlightning.annotation", attrs, seq)


def test_llm_proxy_rewards_go_to_the_latest_earlier_call() -> None:
    spans = [
        reward_span(5, 0.3),
        llm_proxy_span(1, rid="a"),
        llm_proxy_span(2, rid="b"),
        llm_proxy_span(3, rid="c"),
        reward_span(4, 0.1),
        reward_span(6, 0.2),
    ]
    triplets = LlmProxyTraceToTriplet().adapt(spans)
    assert [(t.prompt["token_ids"], t.response["token_ids"]) for t in triplets] == [
        ([1, 1], [101]),
        ([2, 2], [102]),
        ([3, 3], [103]),
    ]
    assert [t.reward for t in triplets] == [0.2, 0.3, 0.1]
    assert [t.metadata["response_id"] for t in triplets] == ["a", "b", "c"]


def test_llm_proxy_dedup_missing_ids_and_equal_sequence() -> None:
    spans = [
        llm_proxy_span(1, rid="same"),
        llm_proxy_span(2, rid="same"),
        llm_proxy_span(3, name="litellm_request"),  # no token ids: ignored
        llm_proxy_span(4, name="litellm_request", prompt_token_ids="[7]", response_token_ids=[8]),
        reward_span(4, 0.9),  # the call at the same sequence is not "earlier": goes to seq 1
        reward_span(5, None),
        make_span(
            "raw_gen_ai_request",
            {"llm.hosted_vllm.prompt_token_ids": [1], "llm.hosted_vllm.choices": str([{"token_ids": [2]}])},
            6,
        ),
    ]
    triplets = LlmProxyTraceToTriplet().adapt(spans)
    assert [(t.prompt["token_ids"], t.response["token_ids"], t.reward) for t in triplets] == [
        ([1, 1], [101], 0.9),
        ([7], [8], None),
        ([1], [2], None),
    ]
