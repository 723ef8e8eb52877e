"""Spans for agents that call ``litellm`` directly (not through the proxy), with vLLM token ids.

:func:`instrument_litellm` is core's :func:`agentlightning.instrumentation.litellm.instrument_litellm` (which the
default tracer already applies when ``litellm`` is imported): it patches ``litellm.completion`` / ``acompletion``
(span ``openai.chat.completion``) and ``litellm.text_completion`` / ``atext_completion`` (span ``openai.completion``)
with the core openai instrumentation's wrappers, so the spans have the same attributes (``gen_ai.*``,
``prompt_token_ids``, ``response_token_ids``, ``logprobs.content``) and the default ``TracerTraceToTriplet`` reads
them. Pass ``return_token_ids=True`` to the call (LiteLLM forwards it to ``hosted_vllm/`` backends). Code that did
``from litellm import completion`` before instrumenting keeps the unpatched function. LiteLLM drops vLLM's
``prompt_token_ids`` from streamed chunks, so streamed calls made directly through LiteLLM carry response token ids
only (the proxy recovers both).
"""

from __future__ import annotations

from agentlightning.instrumentation.litellm import instrument_litellm as _instrument_litellm
from agentlightning.instrumentation.litellm import is_litellm_instrumented, uninstrument_litellm

from ._litellm import import_litellm

__all__ = ["instrument_litellm", "uninstrument_litellm", "is_litellm_instrumented"]


def instrument_litellm() -> bool:
    """Patch ``litellm``'s completion functions (reference counted). False, doing nothing, if it is not installed."""
    try:
        import_litellm()  # the plugin's LiteLLM settings (no network fetch at import)
    except ImportError:
        return False
    return _instrument_litellm()
