"""Instrumentation of LLM clients: spans for every call, with what the trace adapters need."""

from __future__ import annotations

from .openai import instrument_openai, is_openai_instrumented, uninstrument_openai

__all__ = ["instrument_openai", "uninstrument_openai", "is_openai_instrumented"]
