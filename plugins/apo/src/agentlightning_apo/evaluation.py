"""Scoring a candidate prompt: publish it, enqueue one rollout per task, wait for them, average the rewards."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import anyio
from agentlightning.emitter.reward import find_final_reward
from agentlightning.store.base import LightningStore
from agentlightning.types.core import QUEUING_STATUSES, EnqueueRolloutRequest, Rollout, RolloutMode
from agentlightning.types.resources import NamedResources

from .ledger import Ledger
from .prompting import RolloutResult
from .state import Evaluation, Split, VersionedPromptTemplate

__all__ = ["Evaluator"]

logger = logging.getLogger(__name__)


class Evaluator:
    """Runs batches of rollouts for candidates and turns them into :class:`RolloutResult` and a score.

    Args:
        ledger: where candidates are published.
        base_resources: the initial resources; each candidate is published as these with ``resource_name``
            replaced, so that the agent keeps its other resources (its LLM, ...).
        adapter: turns a rollout's spans into chat records (``TraceToMessages``).
        timeout: seconds to wait for a batch; rollouts unfinished by then are left out of the score.
    """

    def __init__(
        self,
        ledger: Ledger,
        base_resources: NamedResources,
        resource_name: str,
        adapter: Any,
        timeout: float,
    ) -> None:
        self.ledger = ledger
        self.store: LightningStore = ledger.store
        self.base_resources = dict(base_resources)
        self.resource_name = resource_name
        self.adapter = adapter
        self.timeout = timeout
        self._published: Dict[str, anyio.Event] = {}

    def resources_for(self, candidate: VersionedPromptTemplate) -> NamedResources:
        return {**self.base_resources, self.resource_name: candidate.prompt_template}

    async def evaluate(
        self,
        candidate: VersionedPromptTemplate,
        tasks: Sequence[Any],
        mode: RolloutMode,
        *,
        split: Split,
        round: int,
        label: str = "",
    ) -> Tuple[List[RolloutResult], Evaluation]:
        """Publish ``candidate`` under its version, run ``tasks`` with it, and score the finished rollouts."""
        await self._publish_once(candidate)
        meta: Dict[str, Any] = {
            "apo": {"run": self.ledger.run_name, "version": candidate.version, "split": split, "round": round}
        }
        requests = [
            EnqueueRolloutRequest(input=task, mode=mode, resources_id=candidate.version, metadata=meta)
            for task in tasks
        ]
        rollouts = await self.store.enqueue_many_rollouts(requests)
        ids = [r.rollout_id for r in rollouts]
        finished = await self.store.wait_for_rollouts(rollout_ids=ids, timeout=self.timeout)
        if len(finished) < len(ids):
            logger.warning(
                "%s %d of %d rollouts unfinished after %.0f s; scoring the %d finished ones",
                label, len(ids) - len(finished), len(ids), self.timeout, len(finished),
            )  # fmt: skip
            await self._cancel_queued(set(ids) - {r.rollout_id for r in finished})
        results = [await self._result(r) for r in finished]
        rewards = [r.final_reward if r.final_reward is not None else 0.0 for r in results]
        score = sum(rewards) / max(1, len(rewards))
        statuses = Counter(r.status for r in results)
        logger.info(
            "%s %s on %d %s tasks: score %.3f (%s)",
            label, candidate.version, len(ids), split, score, ", ".join(f"{k} {v}" for k, v in statuses.items()),
        )  # fmt: skip
        evaluation = Evaluation(
            round=round, split=split, score=score, n_tasks=len(ids), n_finished=len(finished), rollout_ids=ids
        )
        return results, evaluation

    async def _publish_once(self, candidate: VersionedPromptTemplate) -> None:
        """Publish a version once per run (its content never changes); concurrent callers wait for the first."""
        done = self._published.get(candidate.version)
        if done is not None:
            await done.wait()
            return
        done = self._published[candidate.version] = anyio.Event()
        try:
            await self.ledger.publish(candidate.version, self.resources_for(candidate))
        except BaseException:
            del self._published[candidate.version]
            raise
        finally:
            done.set()

    async def _cancel_queued(self, rollout_ids: Set[str]) -> None:
        """Rollouts of a timed-out batch that no runner took yet would only delay the next batches: cancel them."""
        for rollout in await self.store.query_rollouts(rollout_id_in=sorted(rollout_ids)):
            if rollout.status in QUEUING_STATUSES:
                try:
                    await self.store.update_rollout(rollout.rollout_id, status="cancelled")
                except Exception as exc:  # noqa: BLE001 - a runner took it meanwhile
                    logger.debug("could not cancel rollout %s: %s", rollout.rollout_id, exc)

    async def _result(self, rollout: Rollout) -> RolloutResult:
        spans = list(await self.store.query_spans(rollout.rollout_id, "latest"))
        try:
            records: List[Dict[str, Any]] = [dict(r) for r in self.adapter.adapt(spans)]
        except Exception as exc:  # noqa: BLE001 - a span the adapter cannot read must not stop the run
            logger.warning("rollout %s: could not turn spans into messages (%s)", rollout.rollout_id, exc)
            records = []
        return RolloutResult(
            rollout_id=rollout.rollout_id,
            status=rollout.status,
            final_reward=find_final_reward(spans),
            messages=records,
        )


async def gather(funcs: Sequence[Any]) -> List[Any]:
    """Run the zero-argument async callables concurrently; their results in order."""
    results: List[Optional[Any]] = [None] * len(funcs)

    async def one(index: int) -> None:
        results[index] = await funcs[index]()

    async with anyio.create_task_group() as tg:
        for i in range(len(funcs)):
            tg.start_soon(one, i)
    return results
