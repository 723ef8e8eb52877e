"""Spans for the ``openai`` client's Responses API (``client.responses.create`` / ``.stream``, sync and async).

Span ``openai.responses`` in the shared vocabulary (:mod:`agentlightning.instrumentation.genai`): ``instructions``
become a system message, ``input`` items become chat messages (``function_call`` items are assistant tool calls,
``function_call_output`` items are tool messages, ``reasoning`` items the assistant's ``reasoning``), and the output
items fold into one assistant completion with its text, tool calls and reasoning. Streams are reassembled from their
events (``response.completed`` carries the whole response). The protocol carries no token ids.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from .genai import (
    Accumulator,
    CallSpec,
    Message,
    as_dict,
    join_parts,
    message_attributes,
    request_attributes_of,
    scalar_params,
    usage_attributes,
)

__all__ = ["RESPONSES_SPAN_NAME", "responses_request_attributes", "responses_response_attributes", "RESPONSES_CALL"]

RESPONSES_SPAN_NAME = "openai.responses"
_PARAMS = ("temperature", "top_p", "max_output_tokens", "parallel_tool_calls")


def _parts(content: Any) -> Any:
    """Responses content (a string or parts) as OpenAI chat content."""
    if content is None or isinstance(content, str):
        return content
    parts: List[Dict[str, Any]] = []
    for part in as_dict(content) or []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            parts.append({"type": "text", "text": part.get("text") or ""})
        elif kind == "input_image":
            url = part.get("image_url") or part.get("file_id")
            parts.append({"type": "image_url", "image_url": {"url": url, "detail": part.get("detail") or "auto"}})
        elif kind == "refusal":
            parts.append({"type": "text", "text": part.get("refusal") or ""})
        else:
            parts.append(part)
    return join_parts(parts)


def _reasoning_text(item: Dict[str, Any]) -> str:
    texts = [str(s.get("text") or "") for s in item.get("summary") or [] if isinstance(s, dict)]
    texts += [str(c.get("text") or "") for c in item.get("content") or [] if isinstance(c, dict)]
    return "\n".join(t for t in texts if t)


def input_messages(kwargs: Dict[str, Any]) -> List[Message]:
    """The prompt of a Responses call as chat messages."""
    messages: List[Message] = []
    if kwargs.get("instructions"):
        messages.append({"role": "system", "content": kwargs["instructions"]})
    items = kwargs.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    pending_reasoning: Optional[str] = None
    for item in as_dict(items) or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type") or "message"
        if kind == "message":
            message: Message = {"role": item.get("role") or "user", "content": _parts(item.get("content"))}
            if message["role"] == "assistant" and pending_reasoning:
                message["reasoning"], pending_reasoning = pending_reasoning, None
            messages.append(message)
        elif kind == "function_call":
            call = {
                "id": item.get("call_id") or item.get("id"),
                "name": item.get("name"),
                "arguments": item.get("arguments"),
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and (last.get("tool_calls") or not last.get("content")):
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            if pending_reasoning:
                messages[-1]["reasoning"], pending_reasoning = pending_reasoning, None
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": _parts(output)})
        elif kind == "reasoning":
            pending_reasoning = _reasoning_text(item) or pending_reasoning
    return messages


def _functions(tools: Any) -> List[Dict[str, Any]]:
    out = []
    for tool in as_dict(tools) or []:
        if not isinstance(tool, dict):
            continue
        fn: Dict[str, Any] = tool["function"] if isinstance(tool.get("function"), dict) else tool
        if tool.get("type", "function") == "function" and fn.get("name"):
            out.append({k: fn.get(k) for k in ("name", "description", "parameters")})
        elif tool.get("type"):
            out.append({"name": tool.get("name") or tool["type"], "description": f"built-in tool {tool['type']}"})
    return out


def responses_request_attributes(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    params = scalar_params(kwargs, _PARAMS)
    functions = _functions(kwargs.get("tools"))
    return request_attributes_of("openai", "responses", kwargs, params, input_messages(kwargs), functions)


def output_message(response: Dict[str, Any]) -> Message:
    """The output items of a response folded into one assistant message."""
    texts: List[str] = []
    calls: List[Dict[str, Any]] = []
    reasoning: List[str] = []
    for item in response.get("output") or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            content = _parts(item.get("content"))
            texts.append(content if isinstance(content, str) else json.dumps(content))
        elif kind == "function_call":
            calls.append(
                {
                    "id": item.get("call_id") or item.get("id"),
                    "name": item.get("name"),
                    "arguments": item.get("arguments"),
                }
            )
        elif kind == "reasoning":
            reasoning.append(_reasoning_text(item))
        elif kind:
            calls.append({"id": item.get("id"), "name": kind, "arguments": json.dumps(item, default=str)})
    status = response.get("status")
    finish = "tool_calls" if calls else ("length" if status == "incomplete" else "stop")
    message: Message = {"role": "assistant", "content": "".join(texts) if texts else None, "finish_reason": finish}
    if calls:
        message["tool_calls"] = calls
    if any(reasoning):
        message["reasoning"] = "\n".join(r for r in reasoning if r)
    return message


def responses_response_attributes(result: Any) -> Dict[str, Any]:
    parse = getattr(result, "parse", None)
    if callable(parse) and not hasattr(result, "output"):
        result = parse()
    response = as_dict(result)
    if not isinstance(response, dict):
        return {}
    attrs: Dict[str, Any] = {}
    for key, name in (("id", "gen_ai.response.id"), ("model", "gen_ai.response.model")):
        if response.get(key) is not None:
            attrs[name] = str(response[key])
    usage = response.get("usage") or {}
    attrs.update(usage_attributes(usage.get("input_tokens"), usage.get("output_tokens"), usage.get("total_tokens")))
    attrs.update(message_attributes("gen_ai.completion", [output_message(response)]))
    return attrs


class ResponsesAccumulator(Accumulator):
    """The final response of a Responses event stream (from ``response.completed``, else from the finished items)."""

    def __init__(self) -> None:
        self.final: Optional[Dict[str, Any]] = None
        self.items: Dict[int, Dict[str, Any]] = {}
        self.meta: Dict[str, Any] = {}

    def add(self, chunk: Any) -> None:
        event = as_dict(chunk)
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind in ("response.completed", "response.incomplete", "response.failed") and event.get("response"):
            self.final = as_dict(event["response"])
        elif kind == "response.created" and isinstance(event.get("response"), dict):
            self.meta = event["response"]
        elif kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            self.items[int(event.get("output_index") or 0)] = event["item"]

    def attributes(self) -> Dict[str, Any]:
        if self.final is None:
            self.final = {**self.meta, "output": [self.items[i] for i in sorted(self.items)]}
        return responses_response_attributes(self.final)


def _is_stream(kwargs: Dict[str, Any], result: Any) -> bool:
    return bool(kwargs.get("stream")) and not hasattr(result, "parse")


RESPONSES_CALL = CallSpec(
    RESPONSES_SPAN_NAME, responses_request_attributes, responses_response_attributes, ResponsesAccumulator, _is_stream
)
