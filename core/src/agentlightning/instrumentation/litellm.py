"""Spans for agents that call the ``litellm`` SDK directly: ``litellm.completion`` / ``acompletion`` (span
``openai.chat.completion``) and ``text_completion`` / ``atext_completion`` (span ``openai.completion``), with the
openai instrumentation's attributes and wrappers, so one adapter reads them.

vLLM token ids come through when the call passes ``return_token_ids=True`` (LiteLLM forwards it to ``hosted_vllm/``
backends); LiteLLM versions that move them into a choice's ``provider_specific_fields`` are read there too. Code that
did ``from litellm import completion`` before the patch keeps the unpatched function.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from .openai import CHAT_SPAN_NAME, COMPLETION_SPAN_NAME, wrap_async_create, wrap_sync_create
from .patching import PatchSet

__all__ = ["instrument_litellm", "uninstrument_litellm", "is_litellm_instrumented", "restore_token_ids"]

_patches = PatchSet()


def restore_token_ids(response: Any) -> Any:
    """Put vLLM's per-choice ``token_ids`` back on the choice when LiteLLM kept them in ``provider_specific_fields``."""
    choices = response.get("choices") if isinstance(response, dict) else getattr(response, "choices", None)
    for choice in choices if isinstance(choices, list) else []:
        get = choice.get if isinstance(choice, dict) else functools.partial(getattr, choice)
        if get("token_ids", None) is not None:
            continue
        fields = get("provider_specific_fields", None)
        ids = fields.get("token_ids") if isinstance(fields, dict) else None
        if ids is None:
            continue
        try:
            if isinstance(choice, dict):
                choice["token_ids"] = ids
            else:
                setattr(choice, "token_ids", ids)  # noqa: B010 - a pydantic extra, not a declared field
        except (AttributeError, TypeError, ValueError):
            pass
    return response


def _function_wrapper(wrap: Callable[..., Any], original: Callable[..., Any], span_name: str, chat: bool) -> Any:
    """The openai wrappers expect a method; adapt a module-level function."""
    if wrap is wrap_async_create:

        async def as_method_async(_self: Any, *args: Any, **kwargs: Any) -> Any:
            return restore_token_ids(await original(*args, **kwargs))

        wrapped_async = wrap(as_method_async, span_name, chat)

        @functools.wraps(original)
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await wrapped_async(None, *args, **kwargs)

        call_async.__agentlightning_original__ = original  # type: ignore[attr-defined]
        return call_async

    def as_method(_self: Any, *args: Any, **kwargs: Any) -> Any:
        return restore_token_ids(original(*args, **kwargs))

    wrapped = wrap(as_method, span_name, chat)

    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        return wrapped(None, *args, **kwargs)

    call.__agentlightning_original__ = original  # type: ignore[attr-defined]
    return call


def instrument_litellm() -> bool:
    """Patch ``litellm``'s completion functions (reference counted). False, doing nothing, if it is not installed."""
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import
    try:
        import litellm
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
