"""The Responses API served by a chat completion, for vLLM-style backends, so that the call records token ids.

vLLM returns token ids on chat completions (``return_token_ids``) but not on ``/v1/responses``. For deployments whose
backend is vLLM-like (``hosted_vllm/``, ``vllm/``, ``openai_like/``, or ``openai/`` with an ``api_base``) the gateway
turns a Responses request into a chat completion (:func:`chat_request`), and the answer back into a Responses body
(:func:`responses_body`) or, for ``stream: true``, into the Responses event stream (:func:`responses_events`).
Built-in tools (web search, ...) have no chat equivalent and are dropped.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, Iterator, List, Optional

from agentlightning.instrumentation.openai_responses import input_messages

__all__ = ["bridged", "chat_request", "responses_body", "responses_events"]

_VLLM_LIKE = ("hosted_vllm", "vllm", "openai_like")


def bridged(params: Dict[str, Any]) -> bool:
    """Whether a deployment's Responses calls go through a chat completion."""
    provider = str(params.get("model", "")).split("/", 1)[0]
    return provider in _VLLM_LIKE or (provider == "openai" and bool(params.get("api_base")))


def chat_request(body: Dict[str, Any]) -> Dict[str, Any]:
    """Chat-completion keyword arguments (no model) for a Responses request body."""
    messages: List[Dict[str, Any]] = []
    for message in input_messages(body):
        role = message["role"]
        out: Dict[str, Any] = {"role": role, "content": message.get("content")}
        if role == "tool":
            out["tool_call_id"] = message.get("tool_call_id")
        if message.get("tool_calls"):
            out["tool_calls"] = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in message["tool_calls"]
            ]
        messages.append(out)
    kwargs: Dict[str, Any] = {"messages": messages}
    tools = [
        {"type": "function", "function": {k: t.get(k) for k in ("name", "description", "parameters") if t.get(k)}}
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type", "function") == "function"
    ]
    if tools:
        kwargs["tools"] = tools
        choice = body.get("tool_choice")
        if isinstance(choice, str):
            kwargs["tool_choice"] = choice
        elif isinstance(choice, dict) and choice.get("name"):
            kwargs["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        if isinstance(body.get("parallel_tool_calls"), bool):
            kwargs["parallel_tool_calls"] = body["parallel_tool_calls"]
    for src, dst in (("temperature", "temperature"), ("top_p", "top_p"), ("max_output_tokens", "max_tokens")):
        if body.get(src) is not None:
            kwargs[dst] = body[src]
    return kwargs


def responses_body(chat: Dict[str, Any], request: Dict[str, Any]) -> Dict[str, Any]:
    """A Responses API body for a chat completion's first choice."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    number = str(chat.get("id") or f"{time.time_ns()}")
    output: List[Dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        output.append(
            {"type": "reasoning", "id": f"rs_{number}", "summary": [{"type": "summary_text", "text": reasoning}]}
        )
    if message.get("content") or not message.get("tool_calls"):
        text: Dict[str, Any] = {"type": "output_text", "text": message.get("content") or "", "annotations": []}
        output.append(
            {"type": "message", "id": f"msg_{number}", "status": "completed", "role": "assistant", "content": [text]}
        )
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{number}_{i}",
                "call_id": call.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments") or "",
                "status": "completed",
            }
        )
    usage = chat.get("usage") or {}
    incomplete = choice.get("finish_reason") == "length"
    return {
        "id": f"resp_{number}",
        "object": "response",
        "created_at": chat.get("created") or int(time.time()),
        "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "model": chat.get("model") or request.get("model"),
        "output": output,
        "instructions": request.get("instructions"),
        "parallel_tool_calls": bool(request.get("parallel_tool_calls", True)),
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": request.get("tools") or [],
        "text": {"format": {"type": "text"}},
        "metadata": {},
        "error": None,
        "usage": {
            "input_tokens": usage.get("prompt_tokens") or 0,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage.get("completion_tokens") or 0,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.get("total_tokens") or 0,
        },
    }


def responses_events(body: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """The event stream of a finished response: created, each output item (text and arguments in one delta),
    completed."""
    sequence = iter(range(1 << 30))
    started = {**body, "status": "in_progress", "output": []}
    yield {"type": "response.created", "sequence_number": next(sequence), "response": started}
    for index, item in enumerate(body["output"]):
        where: Dict[str, Any] = {"output_index": index, "item_id": item["id"]}
        if item["type"] == "message":
            added: Dict[str, Any] = {**item, "status": "in_progress", "content": []}
        elif item["type"] == "function_call":
            added = {**item, "arguments": "", "status": "in_progress"}
        else:
            added = item
        yield {
            "type": "response.output_item.added",
            "sequence_number": next(sequence),
            "output_index": index,
            "item": added,
        }
        if item["type"] == "message":
            part = item["content"][0]
            empty = {**part, "text": ""}
            at = {**where, "content_index": 0}
            yield {"type": "response.content_part.added", "sequence_number": next(sequence), **at, "part": empty}
            for kind, extra in (("delta", {"delta": part["text"]}), ("done", {"text": part["text"]})):
                event = {"type": f"response.output_text.{kind}", "sequence_number": next(sequence), **at, **extra}
                yield {**event, "logprobs": []}
            yield {"type": "response.content_part.done", "sequence_number": next(sequence), **at, "part": part}
        elif item["type"] == "function_call":
            arguments = item["arguments"]
            delta = {"type": "response.function_call_arguments.delta", "delta": arguments}
            yield {**delta, "sequence_number": next(sequence), **where}
            done = {"type": "response.function_call_arguments.done", "arguments": arguments, "name": item["name"]}
            yield {**done, "sequence_number": next(sequence), **where}
        done_item = {"type": "response.output_item.done", "output_index": index, "item": item}
        yield {**done_item, "sequence_number": next(sequence)}
    yield {"type": "response.completed", "sequence_number": next(sequence), "response": body}


def token_ids(chat: Dict[str, Any]) -> Dict[str, Optional[List[int]]]:
    """vLLM's ``prompt_token_ids`` and first-choice ``token_ids`` of a chat completion (when present)."""
    choices = chat.get("choices") or [{}]
    prompt = chat.get("prompt_token_ids") or choices[0].get("prompt_token_ids")
    return {"prompt_token_ids": prompt, "response_token_ids": choices[0].get("token_ids")}


def sse(event: Dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()
