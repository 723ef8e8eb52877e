"""The span vocabulary every LLM instrumentation writes, and the wrappers that write it.

Whatever the provider, an LLM call is one CLIENT span with the attributes of the openai chat instrumentation
(GenAI semantic conventions as OpenLLMetry names them), so one adapter reads them all:

- ``gen_ai.system`` (``openai``, ``anthropic``, ``gemini``, ...), ``gen_ai.request.type``, ``gen_ai.request.model``,
  ``gen_ai.request.streaming``, sampling parameters, ``gen_ai.request.functions.<j>.name|description|parameters``;
- ``gen_ai.prompt.<i>.role|content|tool_call_id|reasoning`` and ``gen_ai.prompt.<i>.tool_calls.<j>.id|name|arguments``
  in OpenAI chat roles (``system``, ``user``, ``assistant``, ``tool``); multi-part content is a JSON list of OpenAI
  chat content parts (``text``, ``image_url``), a single text part is plain text;
- ``gen_ai.completion.0.role|content|finish_reason|reasoning|tool_calls.<j>.*``, ``gen_ai.response.id|model``,
  ``gen_ai.usage.prompt_tokens|completion_tokens|total_tokens``;
- ``prompt_token_ids`` / ``response_token_ids`` only where the protocol carries them (vLLM's chat and text
  completions); ``agentlightning.token_ids`` says ``"none in protocol"`` on calls whose protocol has no token ids.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from opentelemetry import trace as trace_api
from opentelemetry.trace import Status, StatusCode

__all__ = [
    "Message",
    "TOKEN_IDS_ATTRIBUTE",
    "NO_TOKEN_IDS",
    "as_dict",
    "message_attributes",
    "function_attributes",
    "usage_attributes",
    "wrap_sync",
    "wrap_async",
    "Accumulator",
    "CallSpec",
    "TracedStream",
    "TracedAsyncStream",
    "trace_raw_response",
    "is_raw_response",
    "request_attributes_of",
    "scalar_params",
    "join_parts",
    "text",
    "tracer",
]

TOKEN_IDS_ATTRIBUTE = "agentlightning.token_ids"  # noqa: S105 - an attribute name
NO_TOKEN_IDS = "none in protocol"  # noqa: S105
_SCOPE = "agentlightning.instrumentation"
logger = logging.getLogger(__name__)
_tracers: Dict[str, Tuple[Any, Any]] = {}

Message = Dict[str, Any]
"""``{"role", "content", "tool_calls": [{"id", "name", "arguments"}], "tool_call_id", "reasoning"}``."""


def tracer(scope: str = _SCOPE) -> trace_api.Tracer:
    """The global provider's tracer for ``scope``, cached until the global provider changes."""
    provider = trace_api.get_tracer_provider()
    cached_provider, cached = _tracers.get(scope, (None, None))
    if cached_provider is not provider:
        cached = provider.get_tracer(scope)
        _tracers[scope] = (provider, cached)
    return cached


def as_dict(obj: Any) -> Any:
    """Plain data for a pydantic model (any SDK's), a dict or a list; other values unchanged."""
    if isinstance(obj, dict):
        return obj
    if isinstance(obj, (list, tuple)):
        return [as_dict(o) for o in obj]
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:
            return dump(exclude_none=True)
        except TypeError:
            return dump()
    return obj


def text(value: Any) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def join_parts(parts: List[Dict[str, Any]]) -> Any:
    """OpenAI chat content: the text when every part is text, else the list of parts."""
    if all(p.get("type") == "text" for p in parts):
        return "".join(str(p.get("text") or "") for p in parts)
    return parts


def message_attributes(prefix: str, messages: List[Message]) -> Dict[str, Any]:
    """``<prefix>.<i>.*`` attributes of ``messages``."""
    out: Dict[str, Any] = {}
    for i, message in enumerate(messages):
        base = f"{prefix}.{i}"
        for key in ("role", "content", "tool_call_id", "name", "reasoning", "finish_reason"):
            value = message.get(key)
            if value is not None and value != "":
                out[f"{base}.{key}"] = text(value)
        for j, call in enumerate(message.get("tool_calls") or []):
            for key in ("id", "name", "arguments"):
                if call.get(key) is not None:
                    out[f"{base}.tool_calls.{j}.{key}"] = text(call[key])
    return out


def function_attributes(functions: List[Dict[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for j, fn in enumerate(functions):
        for key in ("name", "description", "parameters"):
            if fn.get(key) is not None:
                out[f"gen_ai.request.functions.{j}.{key}"] = text(fn[key])
    return out


def usage_attributes(prompt: Any, completion: Any, total: Any = None) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if isinstance(prompt, int):
        out["gen_ai.usage.prompt_tokens"] = prompt
    if isinstance(completion, int):
        out["gen_ai.usage.completion_tokens"] = completion
    if isinstance(total, int):
        out["gen_ai.usage.total_tokens"] = total
    elif isinstance(prompt, int) and isinstance(completion, int):
        out["gen_ai.usage.total_tokens"] = prompt + completion
    return out


def request_attributes_of(
    system: str,
    request_type: str,
    kwargs: Dict[str, Any],
    params: Dict[str, Any],
    messages: List[Message],
    functions: List[Dict[str, Any]],
) -> Dict[str, Any]:
    """The request part of an LLM span: system, type, model, streaming, sampling ``params``, prompt and tools, and the
    note that the protocol carries no token ids."""
    attrs: Dict[str, Any] = {
        "gen_ai.system": system,
        "gen_ai.request.type": request_type,
        "gen_ai.request.streaming": bool(kwargs.get("stream")),
        TOKEN_IDS_ATTRIBUTE: NO_TOKEN_IDS,
    }
    if kwargs.get("model") is not None:
        attrs["gen_ai.request.model"] = str(kwargs["model"])
    attrs.update(params)
    attrs.update(message_attributes("gen_ai.prompt", messages))
    attrs.update(function_attributes(functions))
    return attrs


def scalar_params(kwargs: Dict[str, Any], names: Tuple[str, ...], prefix: str = "gen_ai.request.") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name in names:
        value = kwargs.get(name)
        if isinstance(value, (str, bool, int, float)):
            out[prefix + name] = value
    return out


# -- wrappers ------------------------------------------------------------------------------------------------


class Accumulator:
    """Rebuilds a streamed response from its chunks or events; ``attributes()`` gives the span's response part."""

    def add(self, chunk: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def attributes(self) -> Dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError


class _Ender:
    def __init__(self, span: Any, acc: Accumulator) -> None:
        self.span = span
        self.acc = acc
        self.done = False

    def finish(self, error: Optional[BaseException] = None) -> None:
        if self.done:
            return
        self.done = True
        try:
            try:
                self.span.set_attributes(self.acc.attributes())
            except Exception:  # recording must never fail the caller's stream or parse()
                logger.debug("Could not record the response of %s", getattr(self.span, "name", "?"), exc_info=True)
            if error is not None:
                self.span.record_exception(error)
                self.span.set_status(Status(StatusCode.ERROR, str(error)))
        finally:
            self.span.end()


class TracedStream:
    """A sync stream (or iterator) whose chunks pass through unchanged; the span ends with it."""

    def __init__(self, stream: Any, ender: _Ender) -> None:
        self._stream = stream
        self._ender = ender

    def __iter__(self) -> Iterator[Any]:
        try:
            for chunk in self._stream:
                self._ender.acc.add(chunk)
                yield chunk
        except GeneratorExit:
            self._ender.finish()
            raise
        except BaseException as exc:
            self._ender.finish(exc)
            raise
        self._ender.finish()

    def __next__(self) -> Any:
        try:
            chunk = next(self._stream)
        except StopIteration:
            self._ender.finish()
            raise
        self._ender.acc.add(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._stream, "close", None)
            if callable(close):
                close()
        finally:
            self._ender.finish()

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        ender = self.__dict__.get("_ender")
        if ender is not None and not ender.done:
            ender.finish()


class TracedAsyncStream:
    """An async stream (or async iterator) like :class:`TracedStream`."""

    def __init__(self, stream: Any, ender: _Ender) -> None:
        self._stream = stream
        self._ender = ender

    async def _iterate(self) -> Any:
        try:
            async for chunk in self._stream:
                self._ender.acc.add(chunk)
                yield chunk
        except GeneratorExit:
            self._ender.finish()
            raise
        except BaseException as exc:
            self._ender.finish(exc)
            raise
        self._ender.finish()

    def __aiter__(self) -> Any:
        return self._iterate()

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._ender.finish()
            raise
        self._ender.acc.add(chunk)
        return chunk

    async def close(self) -> None:
        try:
            close = getattr(self._stream, "close", None) or getattr(self._stream, "aclose", None)
            if callable(close):
                await close()
        finally:
            self._ender.finish()

    async def __aenter__(self) -> TracedAsyncStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        ender = self.__dict__.get("_ender")
        if ender is not None and not ender.done:
            ender.finish()


class _Parsed(Accumulator):
    """The response a raw response's ``parse()`` gave (non-streamed calls)."""

    def __init__(self, response: Callable[[Any], Dict[str, Any]]) -> None:
        self.response = response
        self.value: Any = None

    def add(self, chunk: Any) -> None:
        if self.value is None:
            self.value = chunk

    def attributes(self) -> Dict[str, Any]:
        return self.response(self.value) if self.value is not None else {}


def _end_unparsed(ender: _Ender, handed_out: Dict[int, Any]) -> None:
    if not handed_out:  # a stream handed out ends the span itself, when it ends
        ender.finish()


def trace_raw_response(
    result: Any,
    span: Any,
    *,
    stream: bool,
    response: Callable[[Any], Dict[str, Any]],
    accumulator: Callable[[], Accumulator],
    stream_type: Any,
) -> Any:
    """End ``span`` through the ``parse()`` of a raw response (``with_raw_response`` / ``with_streaming_response``
    of the Stainless SDKs: openai, anthropic): the parsed response is recorded, a parsed stream comes back traced.
    Until then the span stays open; a raw response dropped unparsed ends it without a completion."""
    method = getattr(type(result), "parse", None)
    ender = _Ender(span, accumulator() if stream else _Parsed(response))
    try:
        owner = weakref.ref(result)  # the patched parse must not keep its response alive (that would be a cycle)
    except TypeError:
        owner = None
    if owner is None or not callable(method):
        ender.finish()
        return result
    handed_out: Dict[int, Any] = {}  # id of the SDK's stream -> (it, its traced wrapper); parse() caches its result

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(owner(), *args, **kwargs)
        except BaseException as exc:
            ender.finish(exc)
            raise

    def seen(parsed: Any) -> Any:
        if not stream:
            ender.acc.add(parsed)
            ender.finish()
            return parsed
        if id(parsed) not in handed_out:
            handed_out[id(parsed)] = (parsed, stream_type(parsed, ender))
        return handed_out[id(parsed)][1]

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def parse_async(*args: Any, **kwargs: Any) -> Any:
            try:
                parsed = await call(*args, **kwargs)
            except BaseException as exc:
                ender.finish(exc)
                raise
            return seen(parsed)

        parse: Callable[..., Any] = parse_async
    else:

        @functools.wraps(method)
        def parse_sync(*args: Any, **kwargs: Any) -> Any:
            return seen(call(*args, **kwargs))

        parse = parse_sync
    try:
        result.parse = parse
    except (AttributeError, TypeError):  # an object that takes no attributes
        ender.finish()
        return result
    weakref.finalize(result, _end_unparsed, ender, handed_out)
    return result


def is_raw_response(result: Any, kwargs: Dict[str, Any]) -> bool:
    """Whether ``result`` is a raw response whose ``parse()`` must be traced instead of read here: a stream, or a
    response whose ``parse()`` is a coroutine (``with_streaming_response`` of an async client)."""
    parse = getattr(result, "parse", None)
    return callable(parse) and (bool(kwargs.get("stream")) or inspect.iscoroutinefunction(parse))


class CallSpec:
    """What one patched method records: span name, request attributes, response attributes, stream accumulator."""

    def __init__(
        self,
        span_name: str,
        request: Callable[[Dict[str, Any]], Dict[str, Any]],
        response: Callable[[Any], Dict[str, Any]],
        accumulator: Callable[[], Accumulator],
        is_stream: Callable[[Dict[str, Any], Any], bool] = lambda kwargs, result: bool(kwargs.get("stream")),
    ) -> None:
        self.span_name = span_name
        self.request = request
        self.response = response
        self.accumulator = accumulator
        self.is_stream = is_stream

    def start(self, kwargs: Dict[str, Any]) -> Any:
        try:
            attributes = self.request(kwargs)
        except Exception:  # noqa: BLE001 - an odd request must not break the call; the span says less
            attributes = {}
        return tracer().start_span(self.span_name, kind=trace_api.SpanKind.CLIENT, attributes=attributes)

    def finish(self, span: Any, result: Any, kwargs: Dict[str, Any], stream_type: Any) -> Any:
        if self.is_stream(kwargs, result):
            return stream_type(result, _Ender(span, self.accumulator()))
        if is_raw_response(result, kwargs):
            return trace_raw_response(
                result,
                span,
                stream=bool(kwargs.get("stream")),
                response=self.response,
                accumulator=self.accumulator,
                stream_type=stream_type,
            )
        try:
            span.set_attributes(self.response(result))
        except Exception:  # recording must never fail the call
            logger.debug("Could not record the response of %s", self.span_name, exc_info=True)
        finally:
            span.end()
        return result


def _fail(span: Any, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, str(exc)))
    span.end()


def wrap_sync(original: Callable[..., Any], spec: CallSpec) -> Callable[..., Any]:
    """A method wrapper that records one span per call (streams: when the stream ends)."""

    @functools.wraps(original)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        span = spec.start(kwargs)
        try:
            with trace_api.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                result = original(self, *args, **kwargs)
        except BaseException as exc:
            _fail(span, exc)
            raise
        return spec.finish(span, result, kwargs, TracedStream)

    call.__agentlightning_original__ = original  # type: ignore[attr-defined]
    return call


def wrap_async(original: Callable[..., Any], spec: CallSpec) -> Callable[..., Any]:
    """:func:`wrap_sync` for coroutine methods."""

    @functools.wraps(original)
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        span = spec.start(kwargs)
        try:
            with trace_api.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                result = await original(self, *args, **kwargs)
        except BaseException as exc:
            _fail(span, exc)
            raise
        return spec.finish(span, result, kwargs, TracedAsyncStream)

    call.__agentlightning_original__ = original  # type: ignore[attr-defined]
    return call
