"""Upstream's module path of ``LLMProxy`` (provided by the ``agentlightning-litellm`` plugin)."""

from __future__ import annotations

from agentlightning._reexport import lazy_exports

__all__ = ["LLMProxy"]  # noqa: F822 (resolved lazily by __getattr__)

__getattr__, __dir__ = lazy_exports(__name__, {"LLMProxy": "agentlightning_litellm.proxy:LLMProxy"}, plugin="litellm")
