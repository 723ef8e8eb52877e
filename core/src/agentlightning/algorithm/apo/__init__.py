"""Upstream's module path of ``APO`` (provided by the ``agentlightning-apo`` plugin)."""

from __future__ import annotations

from agentlightning._reexport import lazy_exports

__all__ = ["APO", "VersionedPromptTemplate"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "APO": "agentlightning_apo.apo:APO",
        "VersionedPromptTemplate": "agentlightning_apo.state:VersionedPromptTemplate",
    },
    plugin="apo",
)
