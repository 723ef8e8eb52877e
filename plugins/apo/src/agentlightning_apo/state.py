"""What an APO run knows: every candidate prompt with its lineage and scores, the beam, the best prompt.

The state is JSON: it is checkpointed into the store (see :mod:`agentlightning_apo.ledger`) after the initial
validation and after every round, and written to the report files.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Literal, Optional

import attrs
from agentlightning.types.resources import PromptTemplate

__all__ = ["VersionedPromptTemplate", "Evaluation", "CandidateRecord", "RoundRecord", "APOState", "STATE_FORMAT"]

STATE_FORMAT = 1

Split = Literal["train", "val_batch", "val_full"]


@attrs.define(kw_only=True)
class VersionedPromptTemplate:
    """A candidate prompt: its resources id (``v0``, ``v1``, ...), the template, and its latest score."""

    version: str
    prompt_template: PromptTemplate
    score: Optional[float] = None


@attrs.define(kw_only=True)
class Evaluation:
    """One scoring of a candidate on a batch of tasks."""

    round: int
    """0 for the initial validation, then 1, 2, ..."""
    split: Split
    score: float
    n_tasks: int
    n_finished: int
    rollout_ids: List[str] = attrs.field(factory=list)


@attrs.define(kw_only=True)
class CandidateRecord:
    """A published candidate and how it came to be."""

    version: str
    template: str
    engine: str
    round: int
    """The round that created it (0: the seed)."""
    parent: Optional[str] = None
    critique: Optional[str] = None
    critique_prompt: Optional[str] = None
    edit_prompt: Optional[str] = None
    rejected_edits: List[Dict[str, Any]] = attrs.field(factory=list)
    """Editor answers refused before this one was accepted: ``{"text", "problems"}``."""
    evaluations: List[Evaluation] = attrs.field(factory=list)
    created_at: float = attrs.field(factory=time.time)

    def prompt_template(self) -> PromptTemplate:
        return PromptTemplate(template=self.template, engine=self.engine)  # type: ignore[arg-type]

    def full_val_scores(self) -> List[float]:
        return [e.score for e in self.evaluations if e.split == "val_full"]


@attrs.define(kw_only=True)
class RoundRecord:
    """The outcome of one beam-search round."""

    round: int
    children: List[str]
    beam: List[Dict[str, Any]]
    """``{"version", "score"}`` on the round's shared validation batch, best first."""
    leader: str
    leader_score: float
    best_version: Optional[str]
    best_score: Optional[float]
    improved: bool
    finished_at: float = attrs.field(factory=time.time)


@attrs.define(kw_only=True)
class APOState:
    """The whole run; ``best_score`` None means no full validation has scored the best prompt yet."""

    run_name: str
    resource_name: str
    seed_template: str
    seed_engine: str
    params: Dict[str, Any] = attrs.field(factory=dict)
    format: int = STATE_FORMAT
    status: Literal["running", "finished"] = "running"
    version_counter: int = 0
    initial_validation_done: bool = False
    rounds_done: int = 0
    beam: List[Dict[str, Any]] = attrs.field(factory=list)
    """``{"version", "score"}`` of the current beam."""
    best_version: Optional[str] = None
    best_score: Optional[float] = None
    candidates: Dict[str, CandidateRecord] = attrs.field(factory=dict)
    discarded_edits: List[Dict[str, Any]] = attrs.field(factory=list)
    """Branches that produced no candidate: ``{"round", "parent", "reason", "critique", "rejected_edits"}``."""
    rounds: List[RoundRecord] = attrs.field(factory=list)
    started_at: float = attrs.field(factory=time.time)
    updated_at: float = attrs.field(factory=time.time)

    def to_dict(self) -> Dict[str, Any]:
        return attrs.asdict(self, recurse=True)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> APOState:
        """Read a state written by :meth:`to_dict`; a ValueError names what is wrong."""
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not an APO state of format {STATE_FORMAT} (found {found!r})")
        fields = dict(data)
        try:
            fields["candidates"] = {
                k: CandidateRecord(**{**c, "evaluations": [Evaluation(**e) for e in c.get("evaluations", [])]})
                for k, c in data.get("candidates", {}).items()
            }
            fields["rounds"] = [RoundRecord(**r) for r in data.get("rounds", [])]
            return cls(**fields)
        except TypeError as exc:
            raise ValueError(f"malformed APO state: {exc}") from exc

    def candidate(self, version: str) -> VersionedPromptTemplate:
        record = self.candidates[version]
        score = next((b["score"] for b in self.beam if b["version"] == version), None)
        return VersionedPromptTemplate(version=version, prompt_template=record.prompt_template(), score=score)

    def summary(self) -> Dict[str, Any]:
        """The headline numbers: seed and best scores on the full validation set, rounds, candidates."""
        seed = next(iter(self.candidates.values()), None)
        seed_scores = seed.full_val_scores() if seed is not None else []
        return {
            "run_name": self.run_name,
            "status": self.status,
            "rounds_done": self.rounds_done,
            "candidates": len(self.candidates),
            "discarded_edits": len(self.discarded_edits),
            "seed_version": seed.version if seed is not None else None,
            "seed_score": seed_scores[0] if seed_scores else None,
            "best_version": self.best_version,
            "best_score": self.best_score,
            "best_template": self.candidates[self.best_version].template if self.best_version else None,
        }
