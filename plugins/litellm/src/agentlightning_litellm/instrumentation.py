"""Spans for agents that call ``litellm`` directly (not through the proxy), with vLLM token ids.

:func:`instrument_litellm` patches ``litellm.completion`` / ``acompletion`` (span ``openai.chat.completion``) and
``litellm.text_completion`` / ``atext_completion`` (span ``openai.completion``) with the core openai
instrumentation's wrappers, so the spans have the same attributes (``gen_ai.*``, ``prompt_token_ids``,
``response_token_ids``, ``logprobs.content``) and the default ``TracerTraceToTriplet`` reads them. Pass
``return_token_ids=True`` to the call (LiteLLM forwards it to ``hosted_vllm/`` backends). Code that did
``from litellm import completion`` before instrumenting keeps the unpatched function. LiteLLM drops vLLM's
``prompt_token_ids`` from streamed chunks, so streamed calls made directly through LiteLLM carry response token ids
only (the proxy recovers both).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, List, Tuple

from agentlightning.instrumentation.openai import (
    CHAT_SPAN_NAME,
    COMPLETION_SPAN_NAME,
    wrap_async_create,
    wrap_sync_create,
)

from .capture import restore_token_ids

__all__ = ["instrument_litellm", "uninstrument_litellm", "is_litellm_instrumented"]

_lock = threading.Lock()
_refcount = 0
_originals: List[Tuple[Any, str, Any]] = []


def _function_wrapper(wrap: Callable[..., Any], original: Callable[..., Any], span_name: str, chat: bool) -> Any:
    """The openai wrappers expect a method; adapt a module-level function."""
    if wrap is wrap_async_create:

        async def as_method_async(_self: Any, *args: Any, **kwargs: Any) -> Any:
            return restore_token_ids(await original(*args, **kwargs))

        wrapped_async = wrap(as_method_async, span_name, chat)

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await wrapped_async(None, *args, **kwargs)

        call_async.__agentlightning_original__ = original  # type: ignore[attr-defined]
        return call_async

    def as_method(_self: Any, *args: Any, **kwargs: Any) -> Any:
        return restore_token_ids(original(*args, **kwargs))

    wrapped = wrap(as_method, span_name, chat)

    def call(*args: Any, **kwargs: Any) -> Any:
        return wrapped(None, *args, **kwargs)

    call.__agentlightning_original__ = original  # type: ignore[attr-defined]
    return call


def instrument_litellm() -> bool:
    """Patch ``litellm``'s completion functions (reference counted). False, doing nothing, if it is not installed."""
    global _refcount
    try:
        from ._litellm import import_litellm

        litellm = import_litellm()
    except ImportError:
        return False
    with _lock:
        _refcount += 1
        if _refcount > 1:
            return True
        for name, wrap, span_name, chat in (
            ("completion", wrap_sync_create, CHAT_SPAN_NAME, True),
            ("acompletion", wrap_async_create, CHAT_SPAN_NAME, True),
            ("text_completion", wrap_sync_create, COMPLETION_SPAN_NAME, False),
            ("atext_completion", wrap_async_create, COMPLETION_SPAN_NAME, False),
        ):
            original = getattr(litellm, name)
            _originals.append((litellm, name, original))
            setattr(litellm, name, _function_wrapper(wrap, original, span_name, chat))
    return True


def uninstrument_litellm() -> None:
    """Undo one :func:`instrument_litellm`; the last one restores the original functions."""
    global _refcount
    with _lock:
        if _refcount == 0:
            return
        _refcount -= 1
        if _refcount > 0:
            return
        while _originals:
            module, name, original = _originals.pop()
            setattr(module, name, original)


def is_litellm_instrumented() -> bool:
    return _refcount > 0
