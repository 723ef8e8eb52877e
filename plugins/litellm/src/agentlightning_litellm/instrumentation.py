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

import functools
from typing import Any, Callable

from agentlightning.instrumentation.openai import (
    CHAT_SPAN_NAME,
    COMPLETION_SPAN_NAME,
    wrap_async_create,
    wrap_sync_create,
)
from agentlightning.instrumentation.patching import PatchSet

from .capture import restore_token_ids

__all__ = ["instrument_litellm", "uninstrument_litellm", "is_litellm_instrumented"]

_patches = PatchSet()


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
    try:
        from ._litellm import import_litellm

        litellm = import_litellm()
    except ImportError:
        return False

    def apply(patches: PatchSet) -> None:
        for name, wrap, span_name, chat in (
            ("completion", wrap_sync_create, CHAT_SPAN_NAME, True),
            ("acompletion", wrap_async_create, CHAT_SPAN_NAME, True),
            ("text_completion", wrap_sync_create, COMPLETION_SPAN_NAME, False),
            ("atext_completion", wrap_async_create, COMPLETION_SPAN_NAME, False),
        ):
            patches.patch(litellm, name, functools.partial(_function_wrapper, wrap, span_name=span_name, chat=chat))

    _patches.install(apply)
    return True


def uninstrument_litellm() -> None:
    """Undo one :func:`instrument_litellm`; the last one restores the original functions."""
    _patches.uninstall()


def is_litellm_instrumented() -> bool:
    return _patches.active
