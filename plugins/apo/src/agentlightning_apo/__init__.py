"""agentlightning-apo: automatic prompt optimisation for agentlightning (``agl.APO``, algorithm name ``apo``)."""

from __future__ import annotations

from .apo import APO
from .placeholders import template_problems
from .prompting import PromptFile, RolloutResult
from .state import APOState, CandidateRecord, Evaluation, RoundRecord, VersionedPromptTemplate

__all__ = [
    "APO",
    "APOState",
    "CandidateRecord",
    "Evaluation",
    "RoundRecord",
    "VersionedPromptTemplate",
    "PromptFile",
    "RolloutResult",
    "template_problems",
]
