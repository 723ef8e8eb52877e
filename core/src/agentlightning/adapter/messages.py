"""Spans to OpenAI chat fine-tuning records: ``{"messages": [...], "tools": [...] | None}`` per LLM call."""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Optional, Sequence, TypedDict

from agentlightning.tracer.attributes import filter_and_unflatten_attributes
from agentlightning.types.tracer import Span

from .base import TraceAdapter, as_spans

__all__ = ["TraceToMessages", "OpenAIMessages", "group_genai_dict"]

logger = logging.getLogger(__name__)

_ROLE_KEYS = {
    "system": ("role", "content", "name"),
    "developer": ("role", "content", "name"),
    "user": ("role", "content", "name"),
    "assistant": ("role", "content", "name", "refusal"),
    "tool": ("role", "content", "tool_call_id"),
    "function": ("role", "content", "name"),
}


class OpenAIMessages(TypedDict):
    messages: List[Dict[str, Any]]
    tools: Optional[List[Dict[str, Any]]]


def group_genai_dict(attributes: Dict[str, Any], prefix: str) -> Any:
    """``prefix.*`` attributes grouped into nested dicts and lists (numeric segments become list indices)."""
    if not any(k.startswith(prefix + ".") for k in attributes):
        return None
    return filter_and_unflatten_attributes(attributes, prefix)


def _entries(value: Any, what: str, span: Span) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):  # numbered entries mixed with other keys (e.g. prompt_filter_results)
        numbered = sorted((k for k in value if str(k).isdigit()), key=int)
        return [value[k] for k in numbered]
    raise ValueError(f"span {span.span_id}: {what} must be a list of entries, got {type(value).__name__}")


def _arguments(value: Any) -> str:
    """A call's arguments as OpenAI gives them, JSON text: recorded text as it is, structured arguments (attributes
    unflattened into a dict) encoded, none as ``{}``."""
    if isinstance(value, str):
        return value
    return "{}" if value is None else json.dumps(value)


def _function_calls(raw: Any) -> List[Dict[str, Any]]:
    calls = raw if isinstance(raw, list) else [raw[k] for k in sorted(raw, key=int)] if isinstance(raw, dict) else []
    return [
        {
            "id": call.get("id"),
            "type": "function",
            "function": {"name": call.get("name"), "arguments": _arguments(call.get("arguments"))},
        }
        for call in calls
        if isinstance(call, dict)
    ]


def _prompt_message(entry: Any, index: int, span: Span) -> Optional[Dict[str, Any]]:
    if not isinstance(entry, dict):
        logger.warning("span %s: prompt entry %d is not a message; skipped", span.span_id, index)
        return None
    role = entry.get("role")
    if role is None:
        if entry.get("tool_calls"):
            role = "assistant"
        elif entry.get("tool_call_id") is not None:
            role = "tool"
        else:
            logger.warning(
                "span %s: prompt entry %d has no role and no inferable role hint; skipped", span.span_id, index
            )
            return None
    allowed = _ROLE_KEYS.get(str(role))
    if allowed is None:
        logger.warning("span %s: prompt entry %d has unknown role %r; skipped", span.span_id, index, role)
        return None
    message = {k: entry[k] for k in allowed if k in entry}
    message["role"] = role
    if role == "assistant" and entry.get("tool_calls"):
        message.setdefault("content", None)
        message["tool_calls"] = _function_calls(entry["tool_calls"])
    return message


def _tools(request: Any) -> Optional[List[Dict[str, Any]]]:
    functions = request.get("functions") if isinstance(request, dict) else None
    if isinstance(functions, dict):
        functions = [functions[k] for k in sorted(functions, key=int) if str(k).isdigit()]
    if not functions:
        return None
    tools = []
    for fn in functions:
        parameters = fn.get("parameters")
        if isinstance(parameters, str):
            try:
                parameters = json.loads(parameters)
            except ValueError:
                pass
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": fn.get("name"),
                    "description": fn.get("description", ""),
                    "parameters": parameters,
                },
            }
        )
    return tools


class TraceToMessages(TraceAdapter[List[OpenAIMessages]]):
    """One record per LLM span (input order): the prompt messages plus the assistant's answer, and the tools.

    The answer's tool calls come from the span's ``tool.*`` children (agent frameworks) or, when it has none, from
    ``gen_ai.completion.<i>.tool_calls.*`` (agentlightning's own openai instrumentation).
    """

    def adapt(self, source: Sequence[Any]) -> List[OpenAIMessages]:
        spans = as_spans(source)
        children: Dict[str, List[Span]] = {}
        for span in spans:
            if span.parent_id is not None:
                children.setdefault(span.parent_id, []).append(span)
        out: List[OpenAIMessages] = []
        for span in spans:
            a = span.attributes
            prompt = group_genai_dict(a, "gen_ai.prompt")
            completion = group_genai_dict(a, "gen_ai.completion")
            request = group_genai_dict(a, "gen_ai.request")
            response = group_genai_dict(a, "gen_ai.response")
            if prompt is None and completion is None and request is None and response is None:
                continue
            if request is not None and not isinstance(request, dict):
                raise ValueError(f"span {span.span_id}: gen_ai.request must group to a dict")
            messages = [
                m for i, e in enumerate(_entries(prompt, "gen_ai.prompt", span)) if (m := _prompt_message(e, i, span))
            ]
            tool_calls = self._child_tool_calls(children.get(span.span_id, []))
            for entry in _entries(completion, "gen_ai.completion", span):
                if not isinstance(entry, dict):
                    continue
                message: Dict[str, Any] = {"role": "assistant", "content": entry.get("content")}
                calls = tool_calls or (_function_calls(entry["tool_calls"]) if entry.get("tool_calls") else [])
                if calls:
                    message["tool_calls"] = calls
                messages.append(message)
            out.append({"messages": messages, "tools": _tools(request)})
        return out

    @staticmethod
    def _child_tool_calls(children: Sequence[Span]) -> List[Dict[str, Any]]:
        calls = []
        for child in children:
            tool = group_genai_dict(child.attributes, "tool")
            if not isinstance(tool, dict) or not tool:
                continue
            call: Dict[str, Any] = tool["call"] if isinstance(tool.get("call"), dict) else {}
            calls.append(
                {
                    "id": call.get("id"),
                    "type": call.get("type", "function"),
                    "function": {"name": tool.get("name"), "arguments": _arguments(tool.get("parameters"))},
                }
            )
        return calls
