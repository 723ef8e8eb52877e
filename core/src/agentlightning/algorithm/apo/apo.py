"""Upstream's ``agentlightning.algorithm.apo.apo`` (provided by the ``agentlightning-apo`` plugin)."""

from __future__ import annotations

from agentlightning._reexport import lazy_exports

__all__ = ["APO", "VersionedPromptTemplate", "batch_iter_over_dataset"]  # noqa: F822 (resolved lazily by __getattr__)

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "APO": "agentlightning_apo.apo:APO",
        "VersionedPromptTemplate": "agentlightning_apo.state:VersionedPromptTemplate",
        "batch_iter_over_dataset": "agentlightning.algorithm:batch_iter_over_dataset",
    },
    plugin="apo",
)
