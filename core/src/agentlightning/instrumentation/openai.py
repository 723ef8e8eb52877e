"""Spans for the ``openai`` client's chat and text completions (sync, async, streaming).

:func:`instrument_openai` patches ``Completions.create`` and ``AsyncCompletions.create`` of
``openai.resources.chat.completions`` (span ``openai.chat.completion``; also their structured-output ``parse``) and
of ``openai.resources.completions`` (span ``openai.completion``), and ``Responses.create`` / ``.parse`` and their
async twins (span ``openai.responses``, see :mod:`agentlightning.instrumentation.openai_responses`;
``responses.stream`` and ``chat.completions.stream`` go through ``create``). Each call becomes one span of the
global OpenTelemetry tracer provider with:

- request: ``gen_ai.system``, ``gen_ai.request.type``, ``gen_ai.request.model``, ``gen_ai.request.streaming``,
  sampling parameters (``gen_ai.request.temperature``, ...), ``gen_ai.request.functions.<i>.name`` /
  ``.description`` / ``.parameters`` (JSON), ``gen_ai.prompt.<i>.role`` / ``.content`` / ``.tool_call_id`` /
  ``.tool_calls.<j>.id|name|arguments``;
- response: ``gen_ai.response.id``, ``gen_ai.response.model``, ``gen_ai.usage.prompt_tokens`` /
  ``completion_tokens`` / ``total_tokens``, ``gen_ai.completion.<i>.role`` / ``.content`` / ``.finish_reason`` /
  ``.tool_calls.<j>.id|name|arguments``;
- vLLM token ids when the server returns them (``extra_body={"return_token_ids": True}``): ``prompt_token_ids``
  and ``response_token_ids`` (of choice 0), and ``logprobs.content`` (JSON) when logprobs were returned.

A streamed call's span ends when the stream is exhausted or closed. Calls through ``with_raw_response`` /
``with_streaming_response`` are recorded when their ``parse()`` runs (a parsed stream comes back traced).
``openai`` is imported only when instrumenting.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

from opentelemetry import trace as trace_api

from .genai import (
    Accumulator,
    TracedAsyncStream,
    TracedStream,
    _Ender,
    _fail,
    is_raw_response,
    trace_raw_response,
    tracer,
)
from .genai import text as _text
from .patching import PatchSet

__all__ = [
    "instrument_openai",
    "uninstrument_openai",
    "is_openai_instrumented",
    "CHAT_SPAN_NAME",
    "COMPLETION_SPAN_NAME",
    # building blocks other instrumentations reuse (agentops, litellm)
    "request_attributes",
    "response_attributes",
    "parse_response",
    "StreamAccumulator",
    "wrap_sync_create",
    "wrap_async_create",
]

CHAT_SPAN_NAME = "openai.chat.completion"
COMPLETION_SPAN_NAME = "openai.completion"
_SCOPE = "agentlightning.instrumentation.openai"
_REQUEST_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "logprobs",
    "top_logprobs",
)

_patches = PatchSet()


def _tracer() -> trace_api.Tracer:
    return tracer(_SCOPE)


# -- attributes ----------------------------------------------------------------------------------------------


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    value = getattr(obj, key, default)
    if value is default:
        extra = getattr(obj, "model_extra", None)
        if extra:
            return extra.get(key, default)
    return value


def _tool_call_attributes(prefix: str, tool_calls: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for j, call in enumerate(tool_calls or []):
        function = _get(call, "function") or {}
        for key, value in (
            ("id", _get(call, "id")),
            ("name", _get(function, "name")),
            ("arguments", _get(function, "arguments")),
        ):
            if value is not None:
                out[f"{prefix}.tool_calls.{j}.{key}"] = _text(value)
    return out


def request_attributes(kwargs: Dict[str, Any], chat: bool) -> Dict[str, Any]:
    """Span attributes for a ``create(**kwargs)`` call."""
    attrs: Dict[str, Any] = {
        "gen_ai.system": "openai",
        "gen_ai.request.type": "chat" if chat else "completion",
        "gen_ai.request.streaming": bool(kwargs.get("stream")),
    }
    if kwargs.get("model") is not None:
        attrs["gen_ai.request.model"] = str(kwargs["model"])
    for name in _REQUEST_PARAMS:
        value = kwargs.get(name)
        if isinstance(value, (str, bool, int, float)):
            attrs[f"gen_ai.request.{name}"] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            attrs[f"gen_ai.request.{name}"] = list(value)
    if chat:
        for i, message in enumerate(kwargs.get("messages") or []):
            prefix = f"gen_ai.prompt.{i}"
            for key in ("role", "content", "tool_call_id", "name"):
                value = _get(message, key)
                if value is not None:
                    attrs[f"{prefix}.{key}"] = _text(value)
            attrs.update(_tool_call_attributes(prefix, _get(message, "tool_calls")))
        for j, tool in enumerate(kwargs.get("tools") or []):
            function = _get(tool, "function") or {}
            for key in ("name", "description", "parameters"):
                value = _get(function, key)
                if value is not None:
                    attrs[f"gen_ai.request.functions.{j}.{key}"] = _text(value)
    else:
        prompt = kwargs.get("prompt")
        if prompt is not None:
            attrs["gen_ai.prompt.0.role"] = "user"
            attrs["gen_ai.prompt.0.content"] = _text(prompt)
    return attrs


def _int_list(value: Any) -> Optional[List[int]]:
    if isinstance(value, (list, tuple)) and value and set(map(type, value)) == {int}:  # C speed on long lists
        return list(value)
    return None


def _usage_attributes(usage: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = _get(usage, key)
        if isinstance(value, int):
            out[f"gen_ai.usage.{key}"] = value
    return out


def response_attributes(response: Any, chat: bool) -> Dict[str, Any]:
    """Span attributes for a (non-streamed) ChatCompletion or Completion."""
    attrs: Dict[str, Any] = {}
    for key, name in (("id", "gen_ai.response.id"), ("model", "gen_ai.response.model")):
        value = _get(response, key)
        if value is not None:
            attrs[name] = str(value)
    attrs.update(_usage_attributes(_get(response, "usage")))
    prompt_ids = _int_list(_get(response, "prompt_token_ids"))
    choices = _get(response, "choices") or []
    for i, choice in enumerate(choices):
        prefix = f"gen_ai.completion.{i}"
        if chat:
            message = _get(choice, "message")
            role, content = _get(message, "role"), _get(message, "content")
            attrs.update(_tool_call_attributes(prefix, _get(message, "tool_calls")))
        else:
            role, content = "assistant", _get(choice, "text")
        if role is not None:
            attrs[f"{prefix}.role"] = str(role)
        if content is not None:
            attrs[f"{prefix}.content"] = _text(content)
        if _get(choice, "finish_reason") is not None:
            attrs[f"{prefix}.finish_reason"] = str(_get(choice, "finish_reason"))
        if prompt_ids is None:  # vLLM's completions API puts prompt ids on each choice
            prompt_ids = _int_list(_get(choice, "prompt_token_ids"))
    if prompt_ids is not None:
        attrs["prompt_token_ids"] = prompt_ids
    if choices:
        response_ids = _int_list(_get(choices[0], "token_ids"))
        if response_ids is not None:
            attrs["response_token_ids"] = response_ids
        logprobs = _get(choices[0], "logprobs")
        content = _get(logprobs, "content") if logprobs is not None else None
        if content:
            dump = [c.model_dump() if hasattr(c, "model_dump") else c for c in content]
            attrs["logprobs.content"] = json.dumps(dump, default=str)
    return attrs


# -- streaming -----------------------------------------------------------------------------------------------


class StreamAccumulator(Accumulator):
    """Rebuilds the final response from chunks, for the span."""

    def __init__(self, chat: bool) -> None:
        self.chat = chat
        self.id: Optional[str] = None
        self.model: Optional[str] = None
        self.usage: Any = None
        self.prompt_token_ids: Optional[List[int]] = None
        self.choices: Dict[int, Dict[str, Any]] = {}

    def add(self, chunk: Any) -> None:
        self.id = self.id or _get(chunk, "id")
        self.model = self.model or _get(chunk, "model")
        if _get(chunk, "usage") is not None:
            self.usage = _get(chunk, "usage")
        if self.prompt_token_ids is None:
            self.prompt_token_ids = _int_list(_get(chunk, "prompt_token_ids"))
        for choice in _get(chunk, "choices") or []:
            index = _get(choice, "index") or 0
            acc = self.choices.setdefault(
                index, {"role": "assistant", "content": [], "finish_reason": None, "tool_calls": {}, "token_ids": []}
            )
            if self.prompt_token_ids is None:
                self.prompt_token_ids = _int_list(_get(choice, "prompt_token_ids"))
            acc["token_ids"].extend(_int_list(_get(choice, "token_ids")) or [])
            if _get(choice, "finish_reason") is not None:
                acc["finish_reason"] = _get(choice, "finish_reason")
            if not self.chat:
                acc["content"].append(_get(choice, "text") or "")
                continue
            delta = _get(choice, "delta")
            if delta is None:
                continue
            if _get(delta, "role"):
                acc["role"] = _get(delta, "role")
            if _get(delta, "content"):
                acc["content"].append(_get(delta, "content"))
            for call in _get(delta, "tool_calls") or []:
                slot = acc["tool_calls"].setdefault(_get(call, "index") or 0, {"id": None, "name": "", "arguments": ""})
                function = _get(call, "function")
                slot["id"] = slot["id"] or _get(call, "id")
                if function is not None:
                    slot["name"] += _get(function, "name") or ""
                    slot["arguments"] += _get(function, "arguments") or ""

    def attributes(self) -> Dict[str, Any]:
        """The span's response attributes (:class:`~agentlightning.instrumentation.genai.Accumulator`)."""
        return response_attributes(self.response(), self.chat)

    def response(self) -> Dict[str, Any]:
        choices = []
        for index in sorted(self.choices):
            acc = self.choices[index]
            content = "".join(acc["content"]) if acc["content"] else None
            calls = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for _, c in sorted(acc["tool_calls"].items())
            ]
            choice: Dict[str, Any] = {
                "index": index,
                "finish_reason": acc["finish_reason"],
                "token_ids": acc["token_ids"],
            }
            if self.chat:
                choice["message"] = {"role": acc["role"], "content": content, "tool_calls": calls or None}
            else:
                choice["text"] = content
            choices.append(choice)
        return {
            "id": self.id,
            "model": self.model,
            "usage": self.usage,
            "prompt_token_ids": self.prompt_token_ids,
            "choices": choices,
        }


# -- patching ------------------------------------------------------------------------------------------------


def parse_response(result: Any) -> Any:
    """The response object, also for ``with_raw_response`` calls (whose ``parse()`` caches its result)."""
    parse = getattr(result, "parse", None)
    if callable(parse) and not hasattr(result, "choices"):
        try:
            return parse()
        except Exception:  # noqa: BLE001 - a body the client cannot parse: record what we can
            return None
    return result


def _start(span_name: str, kwargs: Dict[str, Any], chat: bool) -> Any:
    return _tracer().start_span(span_name, kind=trace_api.SpanKind.CLIENT, attributes=request_attributes(kwargs, chat))


def _finish(span: Any, result: Any, kwargs: Dict[str, Any], chat: bool, stream_type: Callable[..., Any]) -> Any:
    """After the call returned: wrap a stream so the span ends with it, or record the response and end the span."""
    if kwargs.get("stream") and not hasattr(result, "parse"):
        return stream_type(result, _Ender(span, StreamAccumulator(chat)))
    if is_raw_response(result, kwargs):  # with_raw_response / with_streaming_response: traced through parse()
        return trace_raw_response(
            result,
            span,
            stream=bool(kwargs.get("stream")),
            response=functools.partial(response_attributes, chat=chat),
            accumulator=functools.partial(StreamAccumulator, chat),
            stream_type=stream_type,
        )
    try:
        span.set_attributes(response_attributes(parse_response(result), chat))
    finally:
        span.end()
    return result


def wrap_sync_create(original: Callable[..., Any], span_name: str, chat: bool) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        span = _start(span_name, kwargs, chat)
        try:
            with trace_api.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                result = original(self, *args, **kwargs)
        except BaseException as exc:
            _fail(span, exc)
            raise
        return _finish(span, result, kwargs, chat, TracedStream)

    create.__agentlightning_original__ = original  # type: ignore[attr-defined]
    return create


def wrap_async_create(original: Callable[..., Any], span_name: str, chat: bool) -> Callable[..., Any]:
    @functools.wraps(original)
    async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        span = _start(span_name, kwargs, chat)
        try:
            with trace_api.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                result = await original(self, *args, **kwargs)
        except BaseException as exc:
            _fail(span, exc)
            raise
        return _finish(span, result, kwargs, chat, TracedAsyncStream)

    create.__agentlightning_original__ = original  # type: ignore[attr-defined]
    return create


def instrument_openai() -> bool:
    """Patch the openai client (reference counted: each call needs one :func:`uninstrument_openai`).

    Returns False, doing nothing, when ``openai`` is not installed.
    """
    try:
        from openai.resources import completions as text_module
        from openai.resources.chat import completions as chat_module
    except ImportError:
        return False

    def apply(patches: PatchSet) -> None:
        targets: List[Tuple[Any, Callable[..., Any], str, bool]] = [
            (chat_module.Completions, wrap_sync_create, CHAT_SPAN_NAME, True),
            (chat_module.AsyncCompletions, wrap_async_create, CHAT_SPAN_NAME, True),
            (text_module.Completions, wrap_sync_create, COMPLETION_SPAN_NAME, False),
            (text_module.AsyncCompletions, wrap_async_create, COMPLETION_SPAN_NAME, False),
        ]
        for cls, wrap, span_name, chat in targets:
            patches.patch(cls, "create", functools.partial(wrap, span_name=span_name, chat=chat))
        for cls, wrap, _, _ in targets[:2]:
            if hasattr(cls, "parse"):  # structured outputs: posts itself, not through create
                patches.patch(cls, "parse", functools.partial(wrap, span_name=CHAT_SPAN_NAME, chat=True))
        try:
            from openai.resources import responses as responses_module
        except ImportError:  # an openai without the Responses API
            return
        from .genai import wrap_async, wrap_sync
        from .openai_responses import RESPONSES_CALL

        for method in ("create", "parse"):
            if hasattr(responses_module.Responses, method):
                sync, async_ = responses_module.Responses, responses_module.AsyncResponses
                patches.patch(sync, method, functools.partial(wrap_sync, spec=RESPONSES_CALL))
                patches.patch(async_, method, functools.partial(wrap_async, spec=RESPONSES_CALL))

    _patches.install(apply)
    return True


def uninstrument_openai() -> None:
    """Undo one :func:`instrument_openai`; the last one restores the original methods."""
    _patches.uninstall()


def is_openai_instrumented() -> bool:
    return _patches.active
