"""Algorithms: the :class:`Algorithm` base, ``@algo``, ``Baseline`` and helpers."""

from __future__ import annotations

from .base import Algorithm
from .decorator import FunctionalAlgorithm, algo
from .fast import Baseline, FastAlgorithm, RolloutOutcome, summarize
from .utils import batch_iter_over_dataset, with_llm_proxy, with_store

__all__ = [
    "Algorithm",
    "FunctionalAlgorithm",
    "algo",
    "FastAlgorithm",
    "Baseline",
    "RolloutOutcome",
    "summarize",
    "batch_iter_over_dataset",
    "with_store",
    "with_llm_proxy",
]
