"""The interface between the VERL algorithm's loop and the GPU side (verl's workers and vLLM servers).

:class:`~agentlightning_verl.verl_backend.VerlBackend` implements it over verl; tests implement it with a local
OpenAI-compatible server standing in for vLLM. All methods are synchronous (verl's are; the algorithm calls them in
a worker thread).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Protocol, runtime_checkable

from agentlightning.training import PaddedBatch

__all__ = ["TrainerBackend", "BackendFactory"]


@runtime_checkable
class TrainerBackend(Protocol):
    """What the loop needs from a trainer.

    Attributes:
        model_name: the name the rollout servers serve the policy under.
        pad_token_id: the tokenizer's padding id.
    """

    model_name: str
    pad_token_id: int

    def start(self) -> List[str]:
        """Start workers and rollout servers; return the servers' ``host:port`` addresses (OpenAI API under /v1)."""
        ...

    def load_checkpoint(self) -> int:
        """Resume from the latest checkpoint per the config's ``trainer.resume_mode``; return the global step
        reached (0 when starting afresh)."""
        ...

    def wake_up(self) -> None:
        """Put the rollout servers in serving state (weights synced from the actor)."""
        ...

    def sleep(self) -> None:
        """Free the rollout servers' memory for training."""
        ...

    def train_step(self, batch: PaddedBatch, advantages: Optional[List[float]], step: int) -> Mapping[str, float]:
        """One PPO/GRPO update on ``batch`` (rows flagged ``drop`` are for statistics only); ``advantages`` are
        per-row scalars when the loop computed rollout-level advantages, else None (the trainer computes them,
        grouping by ``batch.group_ids``). Returns metrics."""
        ...

    def save_checkpoint(self, step: int) -> None:
        """Save actor (and critic) state for ``step`` under ``trainer.default_local_dir``."""
        ...

    def shutdown(self) -> None:
        """Stop servers and workers."""
        ...


class BackendFactory(Protocol):
    def __call__(self, config: Dict[str, Any]) -> TrainerBackend: ...
