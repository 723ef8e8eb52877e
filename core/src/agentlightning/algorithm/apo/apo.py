"""Upstream's ``agentlightning.algorithm.apo.apo`` (provided by the ``agentlightning-apo`` plugin)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, TypedDict

from agentlightning._reexport import lazy_exports

__all__ = ["APO", "VersionedPromptTemplate", "batch_iter_over_dataset", "RolloutResultForAPO"]  # noqa: F822 (resolved lazily by __getattr__)


class RolloutResultForAPO(TypedDict):
    """One rollout's outcome as upstream v0.3's APO fed it to its prompts (all JSON-serialisable)."""

    status: str
    final_reward: Optional[float]
    spans: List[Dict[str, Any]]
    messages: List[Any]


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "APO": "agentlightning_apo.apo:APO",
        "VersionedPromptTemplate": "agentlightning_apo.state:VersionedPromptTemplate",
        "batch_iter_over_dataset": "agentlightning.algorithm:batch_iter_over_dataset",
    },
    plugin="apo",
)
