"""Agents: the :class:`LitAgent` base class and the decorators that make one of a function."""

from __future__ import annotations

from .decorator import FunctionalLitAgent, llm_rollout, prompt_rollout, rollout
from .litagent import LitAgent, RolloutRawResult, is_v0_1_rollout_api

__all__ = [
    "LitAgent",
    "FunctionalLitAgent",
    "RolloutRawResult",
    "rollout",
    "llm_rollout",
    "prompt_rollout",
    "is_v0_1_rollout_api",
]
