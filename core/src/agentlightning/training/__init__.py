"""Framework-free training data: store rollouts' token-id triplets to training rows (plain Python lists of ints),
and traces out of a store (export: traces, triplets, messages, OpenAI chat, parquet) and back in (import).

Shared by RL and SFT algorithms (``agentlightning-verl``, ``agentlightning-torch``); nothing here imports torch or
numpy.
"""

from __future__ import annotations

from .export import (
    EXPORT_FORMATS,
    ExportFilter,
    ExportStats,
    ImportStats,
    RolloutTrace,
    export_traces,
    import_traces,
    iter_rollout_traces,
    load_sft_dataset,
    read_trace_file,
    to_hf_dataset,
    trace_records,
    trace_triplets,
)
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
    "EXPORT_FORMATS",
    "ExportFilter",
    "ExportStats",
    "ImportStats",
    "RolloutTrace",
    "export_traces",
    "import_traces",
    "iter_rollout_traces",
    "load_sft_dataset",
    "read_trace_file",
    "to_hf_dataset",
    "trace_records",
    "trace_triplets",
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
