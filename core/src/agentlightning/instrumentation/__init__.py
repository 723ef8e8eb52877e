"""Instrumentation of LLM clients: spans for every call, with what the trace adapters need.

:func:`instrument_all` turns on every supported library (openai, anthropic, litellm, google-genai), each when it is
first imported; the default tracer does so. The per-library functions live in the submodules.
"""

from __future__ import annotations

from .auto import instrument_all, instrumented_libraries, uninstrument_all
from .openai import instrument_openai, is_openai_instrumented, uninstrument_openai

__all__ = [
    "instrument_all",
    "uninstrument_all",
    "instrumented_libraries",
    "instrument_openai",
    "uninstrument_openai",
    "is_openai_instrumented",
]
