"""``Hook``: callbacks around each rollout the runner executes (all optional, sync or async)."""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, List, Sequence

if TYPE_CHECKING:
    from agentlightning.litagent.litagent import LitAgent
    from agentlightning.tracer.base import Tracer
    from agentlightning.types.core import AttemptedRollout
    from agentlightning.types.tracer import Span

    from .base import Runner

__all__ = ["Hook", "call_hooks"]

logger = logging.getLogger(__name__)


class Hook:
    """Override what you need. Order per rollout: ``on_rollout_start``, ``on_trace_start``, ``on_trace_end``
    (skipped when the agent raised), ``on_rollout_end`` (always). Exceptions are logged and ignored."""

    async def on_rollout_start(self, *, agent: LitAgent[Any], runner: Runner[Any], rollout: AttemptedRollout) -> None:
        """Before resources are fetched and the trace opens."""

    async def on_trace_start(
        self, *, agent: LitAgent[Any], runner: Runner[Any], tracer: Tracer, rollout: AttemptedRollout
    ) -> None:
        """Inside the trace context, just before the agent runs."""

    async def on_trace_end(
        self, *, agent: LitAgent[Any], runner: Runner[Any], tracer: Tracer, rollout: AttemptedRollout
    ) -> None:
        """Inside the trace context, just after the agent returned."""

    async def on_rollout_end(
        self,
        *,
        agent: LitAgent[Any],
        runner: Runner[Any],
        rollout: AttemptedRollout,
        spans: Sequence[Span] | Sequence[Any],
    ) -> None:
        """After the result was recorded, before the attempt's final status is written."""


async def call_hooks(hooks: Sequence[Hook], name: str, **kwargs: Any) -> None:
    """Call ``name`` on every hook; a failing hook is logged and the others still run."""
    for hook in hooks:
        try:
            result = getattr(hook, name)(**kwargs)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("Hook %s.%s raised; ignored", type(hook).__name__, name)


def as_hook_list(hooks: Any) -> List[Hook]:
    if hooks is None:
        return []
    if isinstance(hooks, Hook):
        return [hooks]
    out = list(hooks)
    for hook in out:
        if not isinstance(hook, Hook):
            raise TypeError(f"hooks must be Hook instances, got {type(hook).__name__}")
    return out
