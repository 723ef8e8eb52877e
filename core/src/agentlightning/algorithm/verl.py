"""Upstream's module path of ``VERL`` (provided by the ``agentlightning-verl`` plugin)."""

from __future__ import annotations

from agentlightning._reexport import lazy_exports

__all__ = ["VERL"]  # noqa: F822 (resolved lazily by __getattr__)

__getattr__, __dir__ = lazy_exports(__name__, {"VERL": "agentlightning_verl.algorithm:VERL"}, plugin="verl")
