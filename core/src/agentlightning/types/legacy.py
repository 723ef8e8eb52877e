"""The v0.1 HTTP protocol's records (deprecated): tasks served to workers and the rollouts they report back.

Kept, with upstream v0.3's field names, for :mod:`agentlightning.server`, :mod:`agentlightning.client` and
:class:`~agentlightning.runner.legacy.LegacyAgentRunner`. New code uses the store's rollouts and spans.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

import attrs

from .core import RolloutMode, TaskInput, Triplet

__all__ = ["Task", "TaskIfAny", "RolloutLegacy", "GenericResponse", "RolloutRawResultLegacy"]


@attrs.define(kw_only=True)
class Task:
    """A task the v0.1 server hands to a worker (deprecated: use the store's rollouts)."""

    rollout_id: str
    input: TaskInput
    mode: Optional[RolloutMode] = None
    resources_id: Optional[str] = None
    create_time: Optional[float] = None
    last_claim_time: Optional[float] = None
    num_claims: Optional[int] = None
    metadata: Dict[str, Any] = attrs.field(factory=dict)


@attrs.define(kw_only=True)
class TaskIfAny:
    """``GET /task``'s answer: a task, or ``is_available=False``."""

    is_available: bool
    task: Optional[Task] = None


@attrs.define(kw_only=True)
class RolloutLegacy:
    """What a v0.1 worker reports for a task (deprecated: use the store's rollouts and spans)."""

    rollout_id: str
    task: Optional[Task] = None
    final_reward: Optional[float] = None
    triplets: Optional[List[Triplet]] = None
    trace: Optional[List[Dict[str, Any]]] = None
    """Spans in OpenTelemetry JSON (``json.loads(readable_span.to_json())``)."""
    logs: Optional[List[str]] = None
    metadata: Dict[str, Any] = attrs.field(factory=dict)


@attrs.define(kw_only=True)
class GenericResponse:
    """The v0.1 server's answer to ``POST /rollout``."""

    status: str = "success"
    message: Optional[str] = None
    data: Optional[Dict[str, Any]] = None


RolloutRawResultLegacy = Union[None, float, List[Triplet], List[Dict[str, Any]], List[Any], RolloutLegacy]
"""What a v0.1 agent's rollout may return: a reward, triplets, OpenTelemetry spans (JSON dicts or ReadableSpans), or
a whole :class:`RolloutLegacy`."""
