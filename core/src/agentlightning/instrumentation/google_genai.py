"""Spans for Google's ``google-genai`` SDK: ``client.models.generate_content`` / ``generate_content_stream`` and
their ``client.aio`` twins.

Span ``google_genai.generate_content`` in the shared vocabulary (:mod:`agentlightning.instrumentation.genai`):
``config.system_instruction`` becomes a system message, ``model`` turns are assistant messages, ``function_call``
parts tool calls, ``function_response`` parts tool messages, thought parts ``reasoning``, inline images
``image_url`` parts. Streamed chunks are joined. The protocol carries no token ids. Each request to the model is one
span, also the several that one ``generate_content`` makes with automatic function calling (Python functions as
tools, named in ``gen_ai.request.functions``).
"""

from __future__ import annotations

import base64
import functools
import inspect
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
    wrap_async,
    wrap_sync,
)
from .patching import PatchSet

__all__ = ["instrument_google_genai", "uninstrument_google_genai", "is_google_genai_instrumented", "GENAI_SPAN_NAME"]

GENAI_SPAN_NAME = "google_genai.generate_content"
_METHODS = ("generate_content", "generate_content_stream")
_PARAMS = ("temperature", "top_p", "top_k", "max_output_tokens", "seed")
_patches = PatchSet()


def _dict(obj: Any) -> Dict[str, Any]:
    value = as_dict(obj)
    return value if isinstance(value, dict) else {}


def _inline_url(data: Dict[str, Any]) -> str:
    raw = data.get("data")
    if isinstance(raw, (bytes, bytearray)):
        raw = base64.b64encode(bytes(raw)).decode()
    return f"data:{data.get('mime_type')};base64,{raw}"


def _content_messages(content: Dict[str, Any]) -> List[Message]:
    role = "assistant" if content.get("role") == "model" else "user"
    parts: List[Dict[str, Any]] = []
    calls: List[Dict[str, Any]] = []
    reasoning: List[str] = []
    tools: List[Message] = []
    for raw in content.get("parts") or []:
        part = _dict(raw)
        if part.get("function_call"):
            call = _dict(part["function_call"])
            arguments = json.dumps(call.get("args") or {}, default=str)
            calls.append({"id": call.get("id") or call.get("name"), "name": call.get("name"), "arguments": arguments})
        elif part.get("function_response"):
            response = _dict(part["function_response"])
            tool_call_id = response.get("id") or response.get("name")
            tools.append(
                {
                    "role": "tool",
                    "tool_call_id": tool_call_id,
                    "content": json.dumps(response.get("response"), default=str),
                }
            )
        elif part.get("thought") and part.get("text") is not None:
            reasoning.append(str(part["text"]))
        elif part.get("text") is not None:
            parts.append({"type": "text", "text": str(part["text"])})
        elif part.get("inline_data"):
            parts.append({"type": "image_url", "image_url": {"url": _inline_url(_dict(part["inline_data"]))}})
        elif part.get("file_data"):
            parts.append({"type": "image_url", "image_url": {"url": _dict(part["file_data"]).get("file_uri")}})
    out: List[Message] = list(tools)
    if parts or calls or reasoning or not tools:
        message: Message = {"role": role, "content": join_parts(parts) if parts else None}
        if calls:
            message["tool_calls"] = calls
        if reasoning:
            message["reasoning"] = "\n".join(reasoning)
        out.append(message)
    return out


def prompt_messages(kwargs: Dict[str, Any]) -> List[Message]:
    messages: List[Message] = []
    config = _dict(kwargs.get("config"))
    system = config.get("system_instruction")
    if system is not None:
        if isinstance(system, str):
            messages.append({"role": "system", "content": system})
        else:
            for message in _content_messages(_dict(system) if not isinstance(system, list) else {"parts": system}):
                messages.append({**message, "role": "system"})
    contents = kwargs.get("contents")
    items = contents if isinstance(contents, list) else [contents]
    loose: List[Any] = []  # strings and parts outside a Content: one user turn
    for item in items:
        if isinstance(item, str):
            loose.append({"text": item})
            continue
        data = _dict(item)
        if "parts" in data or "role" in data:
            messages.extend(_content_messages(data))
        elif data:
            loose.append(data)
    if loose:
        messages.extend(_content_messages({"role": "user", "parts": loose}))
    return messages


def _functions(config: Dict[str, Any]) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    for tool in config.get("tools") or []:
        if callable(tool):  # a Python function for automatic function calling
            name = getattr(tool, "__name__", None)
            out.append({"name": name, "description": inspect.getdoc(tool), "parameters": None})
            continue
        for declaration in _dict(tool).get("function_declarations") or []:
            fn = _dict(declaration)
            parameters = fn.get("parameters_json_schema") or fn.get("parameters")
            out.append({"name": fn.get("name"), "description": fn.get("description"), "parameters": parameters})
    return out


def request_attributes(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    config = _dict(kwargs.get("config"))
    params = scalar_params(config, _PARAMS)
    return request_attributes_of("gemini", "chat", kwargs, params, prompt_messages(kwargs), _functions(config))


_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}


def _response_parts(response: Dict[str, Any]) -> List[Any]:
    candidates = response.get("candidates") or []
    return list(_dict(_dict(candidates[0]).get("content")).get("parts") or []) if candidates else []


def _attributes(response: Dict[str, Any], parts: List[Any], finish: Optional[str]) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {}
    if response.get("response_id"):
        attrs["gen_ai.response.id"] = str(response["response_id"])
    if response.get("model_version"):
        attrs["gen_ai.response.model"] = str(response["model_version"])
    usage = _dict(response.get("usage_metadata"))
    attrs.update(
        usage_attributes(
            usage.get("prompt_token_count"), usage.get("candidates_token_count"), usage.get("total_token_count")
        )
    )
    (completion,) = _content_messages({"role": "model", "parts": parts})[-1:]
    completion["finish_reason"] = "tool_calls" if completion.get("tool_calls") else _FINISH.get(str(finish), finish)
    attrs.update(message_attributes("gen_ai.completion", [completion]))
    return attrs


def _finish_reason(response: Dict[str, Any]) -> Optional[str]:
    candidates = response.get("candidates") or []
    reason = _dict(candidates[0]).get("finish_reason") if candidates else None
    return None if reason is None else str(getattr(reason, "value", reason))


def response_attributes(result: Any) -> Dict[str, Any]:
    response = _dict(result)
    return _attributes(response, _response_parts(response), _finish_reason(response))


class ChunkAccumulator(Accumulator):
    """Streamed chunks joined: text parts concatenated, other parts kept, the last usage and finish reason."""

    def __init__(self) -> None:
        self.parts: List[Dict[str, Any]] = []
        self.last: Dict[str, Any] = {}
        self.finish: Optional[str] = None

    def add(self, chunk: Any) -> None:
        response = _dict(chunk)
        self.last = {**self.last, **{k: v for k, v in response.items() if k != "candidates"}}
        self.finish = _finish_reason(response) or self.finish
        for raw in _response_parts(response):
            part = dict(_dict(raw))
            previous = self.parts[-1] if self.parts else None
            joinable = set(part) == {"text"} or set(part) == {"text", "thought"}
            if (
                previous is not None
                and joinable
                and set(previous) == set(part)
                and part.get("thought") == previous.get("thought")
            ):
                previous["text"] = str(previous.get("text") or "") + str(part.get("text") or "")
            else:
                self.parts.append(part)

    def attributes(self) -> Dict[str, Any]:
        return _attributes(self.last, self.parts, self.finish)


GENERATE_CALL = CallSpec(GENAI_SPAN_NAME, request_attributes, response_attributes, ChunkAccumulator, lambda k, r: False)
STREAM_CALL = CallSpec(
    GENAI_SPAN_NAME,
    lambda kwargs: request_attributes({**kwargs, "stream": True}),
    response_attributes,
    ChunkAccumulator,
    lambda k, r: True,
)


def instrument_google_genai() -> bool:
    """Patch ``google.genai``'s models (reference counted). False, doing nothing, when it is not installed."""
    try:
        from google.genai import models as module
    except ImportError:
        return False

    # One span per request to the model: the private methods each request goes through (automatic function
    # calling and continuations make several per public call), else the public ones.
    private = [hasattr(cls, f"_{name}") for cls in (module.Models, module.AsyncModels) for name in _METHODS]
    prefix = "_" if all(private) else ""

    def apply(patches: PatchSet) -> None:
        for name, spec in zip(_METHODS, (GENERATE_CALL, STREAM_CALL), strict=True):
            patches.patch(module.Models, prefix + name, functools.partial(wrap_sync, spec=spec))
            patches.patch(module.AsyncModels, prefix + name, functools.partial(wrap_async, spec=spec))

    _patches.install(apply)
    return True


def uninstrument_google_genai() -> None:
    _patches.uninstall()


def is_google_genai_instrumented() -> bool:
    return _patches.active
