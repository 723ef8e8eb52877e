"""LLM proxy for agentlightning over the LiteLLM SDK. Importing this package imports neither LiteLLM nor starlette."""

from __future__ import annotations

from typing import Any

__all__ = ["LLMProxy", "ProxySettings", "instrument_litellm", "uninstrument_litellm"]


def __getattr__(name: str) -> Any:
    if name == "LLMProxy":
        from .proxy import LLMProxy

        return LLMProxy
    if name == "ProxySettings":
        from .settings import ProxySettings

        return ProxySettings
    if name in ("instrument_litellm", "uninstrument_litellm"):
        from . import instrumentation

        return getattr(instrumentation, name)
    raise AttributeError(f"module 'agentlightning_litellm' has no attribute {name!r}")
