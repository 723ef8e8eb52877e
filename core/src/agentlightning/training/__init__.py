"""Framework-free training data: store rollouts' token-id triplets to training rows (plain Python lists of ints).

Shared by RL algorithms (``agentlightning-verl``, ``agentlightning-torch``); nothing here imports torch or numpy.
"""

from __future__ import annotations

from .rows import (
    OVERLONG_PROMPT_POLICIES,
    OVERLONG_RESPONSE_POLICIES,
    ROW_LEVELS,
    PaddedBatch,
    RolloutSample,
    RowsConfig,
    RowsResult,
    TrainingRow,
    Turn,
    build_rows,
    group_advantages,
    merge_turns,
    pad_rows,
    rollout_level_advantages,
    sample_from_triplets,
)

__all__ = [
    "OVERLONG_PROMPT_POLICIES",
    "OVERLONG_RESPONSE_POLICIES",
    "ROW_LEVELS",
    "PaddedBatch",
    "RolloutSample",
    "RowsConfig",
    "RowsResult",
    "TrainingRow",
    "Turn",
    "build_rows",
    "group_advantages",
    "merge_turns",
    "pad_rows",
    "rollout_level_advantages",
    "sample_from_triplets",
]
