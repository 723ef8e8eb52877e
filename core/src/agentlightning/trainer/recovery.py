"""Attempts left in flight by a run that was killed (SIGKILL, power loss) are marked when the next run starts.

A killed trainer's runners die with it, so their attempts would stay ``preparing``/``running`` for ever (or until
the store times them out, when their rollout has ``unresponsive_seconds``). When a run with an algorithm starts on a
store that already holds such attempts, started before this run, it marks them ``unresponsive`` (their runner is
gone) and puts their rollouts back in the queue, so the resumed run runs them again. This assumes one run with an
algorithm per store at a time (two live trainers sharing one store would take each other's attempts for dead ones).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, List

from agentlightning.types.core import QUEUING_STATUSES, Rollout

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

__all__ = ["recover_interrupted", "recover_rollout"]

logger = logging.getLogger(__name__)


async def recover_interrupted(store: LightningStore, *, before: float) -> List[str]:
    """Mark the in-flight attempts started before ``before`` (a ``time.time()``) ``unresponsive`` and requeue their
    rollouts; returns the ids of the rollouts requeued."""
    requeued: List[str] = []
    for rollout in await store.query_rollouts(status_in=["preparing", "running"]):
        attempt = getattr(rollout, "attempt", None)
        if attempt is None or attempt.start_time >= before:
            continue
        await recover_rollout(store, rollout)
        requeued.append(rollout.rollout_id)
    return requeued


async def recover_rollout(store: LightningStore, rollout: Rollout) -> Rollout:
    """Mark the in-flight latest attempt of ``rollout`` (whose runner is known gone) ``unresponsive`` and put the
    rollout back in the queue; returns the rollout as it now is."""
    attempt = getattr(rollout, "attempt", None)
    if attempt is not None and attempt.status in ("preparing", "running"):
        logger.warning(
            "Rollout %s: attempt %s (worker %s) was left %s by an earlier run that did not stop; marking it "
            "unresponsive and requeuing the rollout",
            rollout.rollout_id, attempt.attempt_id, attempt.worker_id, attempt.status,
        )  # fmt: skip
        await store.update_attempt(rollout.rollout_id, attempt.attempt_id, status="unresponsive")
    current = await store.get_rollout_by_id(rollout.rollout_id)
    if current is None or current.status in QUEUING_STATUSES:
        return current if current is not None else rollout
    # its retry config did not requeue it (no retries left, or "unresponsive" not retried): the interruption was
    # the run's, not the rollout's, so it runs again all the same
    return await store.update_rollout(rollout.rollout_id, status="requeuing")
