"""Spans for the ``anthropic`` client's Messages API: ``messages.create`` (plain and ``stream=True``),
``messages.stream`` and ``messages.parse``, sync and async, and the same on ``beta.messages``.

Span ``anthropic.messages`` in the shared vocabulary (:mod:`agentlightning.instrumentation.genai`): ``system``
becomes a system message; ``tool_use`` blocks are assistant tool calls (arguments as JSON), ``tool_result`` blocks
tool messages, ``thinking`` blocks the assistant's ``reasoning``, images ``image_url`` parts (data URLs). The
protocol carries no token ids. ``anthropic`` is imported only when instrumenting.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Dict, List, Optional

from opentelemetry import trace as trace_api

from .genai import (
    Accumulator,
    CallSpec,
    Message,
    _Ender,
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

__all__ = ["instrument_anthropic", "uninstrument_anthropic", "is_anthropic_instrumented", "ANTHROPIC_SPAN_NAME"]

ANTHROPIC_SPAN_NAME = "anthropic.messages"
_PARAMS = ("temperature", "top_p", "top_k", "max_tokens")
_patches = PatchSet()


def _image_url(block: Dict[str, Any]) -> str:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        return f"data:{source.get('media_type')};base64,{source.get('data')}"
    return str(source.get("url") or source.get("file_id") or "")


def _blocks_to_messages(role: str, content: Any) -> List[Message]:
    """One Anthropic message as chat messages (a user turn of tool results becomes tool messages)."""
    if content is None or isinstance(content, str):
        return [{"role": role, "content": content}]
    parts: List[Dict[str, Any]] = []
    calls: List[Dict[str, Any]] = []
    reasoning: List[str] = []
    tools: List[Message] = []
    for block in as_dict(content):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block)}})
        elif kind in ("tool_use", "server_tool_use"):
            arguments = json.dumps(block.get("input") or {}, default=str)
            calls.append({"id": block.get("id"), "name": block.get("name"), "arguments": arguments})
        elif kind == "tool_result":
            result = block.get("content")
            text = result if isinstance(result, str) else join_parts(_plain_parts(result))
            tools.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
        elif kind == "redacted_thinking":
            reasoning.append("[redacted]")
    out: List[Message] = list(tools)
    if parts or calls or reasoning or not tools:
        message: Message = {"role": role, "content": join_parts(parts) if parts else None}
        if calls:
            message["tool_calls"] = calls
        if reasoning:
            message["reasoning"] = "\n".join(reasoning)
        out.append(message)
    return out


def _plain_parts(content: Any) -> List[Dict[str, Any]]:
    parts = []
    for block in as_dict(content) or []:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        elif isinstance(block, dict) and block.get("type") == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block)}})
    return parts


def prompt_messages(kwargs: Dict[str, Any]) -> List[Message]:
    messages: List[Message] = []
    system = kwargs.get("system")
    if system:
        messages.append(
            {"role": "system", "content": system if isinstance(system, str) else join_parts(_plain_parts(system))}
        )
    for message in as_dict(kwargs.get("messages")) or []:
        if isinstance(message, dict):
            messages.extend(_blocks_to_messages(str(message.get("role") or "user"), message.get("content")))
    return messages


def request_attributes(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    functions = [
        {"name": t.get("name"), "description": t.get("description"), "parameters": t.get("input_schema")}
        for t in as_dict(kwargs.get("tools")) or []
        if isinstance(t, dict)
    ]
    params = scalar_params(kwargs, _PARAMS)
    return request_attributes_of("anthropic", "chat", kwargs, params, prompt_messages(kwargs), functions)


def response_attributes(result: Any) -> Dict[str, Any]:
    parse = getattr(result, "parse", None)
    if callable(parse) and not hasattr(result, "content"):
        result = parse()
    message = as_dict(result)
    if not isinstance(message, dict):
        return {}
    attrs: Dict[str, Any] = {}
    for key, name in (("id", "gen_ai.response.id"), ("model", "gen_ai.response.model")):
        if message.get(key) is not None:
            attrs[name] = str(message[key])
    usage = message.get("usage") or {}
    attrs.update(usage_attributes(usage.get("input_tokens"), usage.get("output_tokens")))
    (completion,) = _blocks_to_messages("assistant", message.get("content") or [])[-1:]
    stop = message.get("stop_reason")
    completion["finish_reason"] = {"tool_use": "tool_calls", "end_turn": "stop", "max_tokens": "length"}.get(
        str(stop), stop
    )
    attrs.update(message_attributes("gen_ai.completion", [completion]))
    return attrs


class MessageAccumulator(Accumulator):
    """A message rebuilt from the raw events of ``create(stream=True)``."""

    def __init__(self) -> None:
        self.message: Dict[str, Any] = {"content": [], "usage": {}}

    def add(self, chunk: Any) -> None:
        event = as_dict(chunk)
        if not isinstance(event, dict):
            return
        kind, m = event.get("type"), self.message
        if kind == "message_start":
            start = as_dict(event.get("message")) or {}
            m.update({k: start.get(k) for k in ("id", "model", "role")})
            m["usage"].update(start.get("usage") or {})
        elif kind == "content_block_start":
            m["content"].append(dict(event.get("content_block") or {}))
        elif kind == "content_block_delta" and m["content"]:
            delta, block = event.get("delta") or {}, m["content"][-1]
            dtype = delta.get("type")
            if dtype == "text_delta":
                block["text"] = block.get("text", "") + (delta.get("text") or "")
            elif dtype == "input_json_delta":
                block["_json"] = block.get("_json", "") + (delta.get("partial_json") or "")
            elif dtype == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + (delta.get("thinking") or "")
        elif kind == "message_delta":
            m["stop_reason"] = (event.get("delta") or {}).get("stop_reason")
            m["usage"].update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})

    def attributes(self) -> Dict[str, Any]:
        for block in self.message["content"]:
            raw = block.pop("_json", None)
            if raw:
                try:
                    block["input"] = json.loads(raw)
                except ValueError:
                    block["input"] = raw
        return response_attributes(self.message)


def _is_stream(kwargs: Dict[str, Any], result: Any) -> bool:
    return bool(kwargs.get("stream")) and not hasattr(result, "parse")


MESSAGES_CALL = CallSpec(ANTHROPIC_SPAN_NAME, request_attributes, response_attributes, MessageAccumulator, _is_stream)


class _SnapshotAccumulator(Accumulator):
    """``messages.stream()``: the SDK's own ``MessageStream`` keeps the message so far."""

    def __init__(self) -> None:
        self.stream: Any = None

    def add(self, chunk: Any) -> None:
        pass

    def attributes(self) -> Dict[str, Any]:
        snapshot: Optional[Any] = None
        try:
            snapshot = self.stream.current_message_snapshot if self.stream is not None else None
        except Exception:  # noqa: BLE001 - nothing was received
            snapshot = None
        return response_attributes(snapshot) if snapshot is not None else {}


class _TracedManager:
    """Wraps ``MessageStreamManager`` / ``AsyncMessageStreamManager``: the span covers the ``with`` block."""

    def __init__(self, manager: Any, kwargs: Dict[str, Any]) -> None:
        self._manager = manager
        self._kwargs = {**kwargs, "stream": True}
        self._ender: Optional[_Ender] = None

    def _begin(self) -> _SnapshotAccumulator:
        acc = _SnapshotAccumulator()
        self._ender = _Ender(MESSAGES_CALL.start(self._kwargs), acc)
        return acc

    def _end(self, exc: Optional[BaseException]) -> None:
        if self._ender is not None:
            self._ender.finish(exc)

    def __enter__(self) -> Any:
        acc = self._begin()
        assert self._ender is not None
        with trace_api.use_span(self._ender.span, end_on_exit=False):
            acc.stream = self._manager.__enter__()
        return acc.stream

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self._manager.__exit__(exc_type, exc, tb)
        finally:
            self._end(exc)

    async def __aenter__(self) -> Any:
        acc = self._begin()
        assert self._ender is not None
        with trace_api.use_span(self._ender.span, end_on_exit=False):
            acc.stream = await self._manager.__aenter__()
        return acc.stream

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self._manager.__aexit__(exc_type, exc, tb)
        finally:
            self._end(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)


def _wrap_stream(original: Any) -> Any:
    @functools.wraps(original)
    def stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _TracedManager(original(self, *args, **kwargs), kwargs)

    stream.__agentlightning_original__ = original  # type: ignore[attr-defined]
    return stream


def instrument_anthropic() -> bool:
    """Patch the anthropic client (reference counted). False, doing nothing, when ``anthropic`` is not installed."""
    try:
        from anthropic.resources import messages as module
    except ImportError:
        return False

    modules = [module]
    try:  # the beta Messages API (its tool runner, newer features): the same calls
        from anthropic.resources.beta import messages as beta_module

        modules.append(beta_module)
    except ImportError:
        pass

    def apply(patches: PatchSet) -> None:
        sync_call = functools.partial(wrap_sync, spec=MESSAGES_CALL)
        async_call = functools.partial(wrap_async, spec=MESSAGES_CALL)
        for mod in modules:
            for method in ("create", "parse"):  # parse: structured outputs, posted without create
                if hasattr(mod.Messages, method):
                    patches.patch(mod.Messages, method, sync_call)
                    patches.patch(mod.AsyncMessages, method, async_call)
            patches.patch(mod.Messages, "stream", _wrap_stream)
            patches.patch(mod.AsyncMessages, "stream", _wrap_stream)

    _patches.install(apply)
    return True


def uninstrument_anthropic() -> None:
    _patches.uninstall()


def is_anthropic_instrumented() -> bool:
    return _patches.active
