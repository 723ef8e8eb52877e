"""Instrumentation of LLM clients: spans for every call, with what the trace adapters need."""

from __future__ import annotations

from .openai import instrument_openai, is_openai_instrumented, uninstrument_openai

__all__ = ["instrument_openai", "uninstrument_openai", "is_openai_instrumented", "instrument_all", "uninstrument_all"]


def instrument_all() -> None:
    """Instrument every client library whose instrumentation is installed: OpenAI (core), LiteLLM and AgentOps
    (their plugins). A missing plugin or library is skipped with a warning, as upstream v0.3 did."""
    import importlib
    import warnings

    instrument_openai()
    for module, function, what in _PLUGIN_INSTRUMENTATIONS:
        try:
            getattr(importlib.import_module(module), function[0])()
        except ImportError:
            warnings.warn(f"{what} is not installed. It's therefore not instrumented.", stacklevel=2)


def uninstrument_all() -> None:
    """Undo :func:`instrument_all`."""
    import importlib

    uninstrument_openai()
    for module, function, _ in _PLUGIN_INSTRUMENTATIONS:
        try:
            getattr(importlib.import_module(module), function[1])()
        except ImportError:
            pass


# (module, (instrument, uninstrument), what to install)
_PLUGIN_INSTRUMENTATIONS = (
    (
        "agentlightning_litellm.instrumentation",
        ("instrument_litellm", "uninstrument_litellm"),
        "agentlightning-litellm",
    ),
    ("agentlightning_agentops.instrumentation", ("patch_agentops", "unpatch_agentops"), "agentlightning-agentops"),
)
