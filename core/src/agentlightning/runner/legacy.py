"""``LegacyAgentRunner`` (deprecated): the v0.1 worker loop over :class:`~agentlightning.client.AgentLightningClient`.

It polls a task, fetches its resources, calls the agent (the v0.1 signature ``(task, rollout_id=, resources=)`` when
the method has a ``rollout_id`` parameter, else ``(task, resources=, rollout=)``), turns what the agent returned into
a :class:`~agentlightning.types.RolloutLegacy` and posts it. Use :class:`~agentlightning.runner.LitAgentRunner`.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from agentlightning.litagent.litagent import is_v0_1_rollout_api
from agentlightning.types.core import Triplet
from agentlightning.types.legacy import RolloutLegacy, Task
from agentlightning.types.serialization import to_dict
from agentlightning.types.tracer import Span

from .base import Runner

if TYPE_CHECKING:
    from agentlightning.client import AgentLightningClient
    from agentlightning.litagent.litagent import LitAgent
    from agentlightning.tracer.base import Tracer

__all__ = ["LegacyAgentRunner"]

logger = logging.getLogger(__name__)


class LegacyAgentRunner(Runner[Any]):
    """Runs ``agent`` on the tasks ``client`` serves, up to ``max_tasks`` (deprecated: use ``LitAgentRunner``)."""

    def __init__(
        self,
        agent: LitAgent[Any],
        client: AgentLightningClient,
        tracer: Tracer,
        triplet_exporter: Any,
        worker_id: Optional[int] = None,
        max_tasks: Optional[int] = None,
    ) -> None:
        warnings.warn(
            "LegacyAgentRunner is deprecated. Please use LitAgentRunner instead.", DeprecationWarning, stacklevel=2
        )
        self.agent = agent
        self.client = client
        self.tracer = tracer
        self.triplet_exporter = triplet_exporter
        self.worker_id = worker_id
        self.max_tasks = max_tasks

    # The v0.1 lifecycle has nothing to set up: the client is ready when given.
    def init(self, *args: Any, **kwargs: Any) -> None:
        pass

    def init_worker(self, worker_id: int, *args: Any, **kwargs: Any) -> None:
        self.worker_id = worker_id

    def teardown_worker(self, worker_id: int, *args: Any, **kwargs: Any) -> None:
        pass

    def teardown(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _prefix(self, rollout_id: Optional[str] = None) -> str:
        worker = f"Worker {self.worker_id}" if self.worker_id is not None else "Default Worker"
        return f"[{worker} | RolloutLegacy {rollout_id}]" if rollout_id else f"[{worker}]"

    def _to_rollout_object(self, result: Any, rollout_id: str) -> RolloutLegacy:
        """What the agent returned, as the rollout to report (triplets re-derived from the trace when there is one)."""
        from opentelemetry.sdk.trace import ReadableSpan

        trace: Optional[List[Dict[str, Any]]] = None
        final_reward: Optional[float] = None
        triplets: Optional[List[Triplet]] = None
        spans: Optional[List[Any]] = None
        if isinstance(result, (int, float)) and not isinstance(result, bool):
            final_reward = float(result)
        elif isinstance(result, RolloutLegacy):
            final_reward, triplets, trace = result.final_reward, result.triplets, result.trace
        elif isinstance(result, list) and result:
            if all(isinstance(item, Triplet) for item in result):
                triplets = list(result)
            elif all(isinstance(item, ReadableSpan) for item in result):
                spans = list(result)
                trace = [json.loads(span.to_json()) for span in result]
            elif all(isinstance(item, Span) for item in result):
                spans = list(result)
                trace = [to_dict(span) for span in result]
            elif all(isinstance(item, dict) for item in result):
                trace = list(result)
        if spans is None:
            last = list(self.tracer.get_last_trace()) if self.tracer is not None else []
            if last:
                spans = last
                trace = [to_dict(span) for span in last]
        if spans and self.triplet_exporter is not None:
            triplets = list(self.triplet_exporter(spans))
        if triplets and triplets[-1].reward is not None and final_reward is None:
            final_reward = triplets[-1].reward
        if isinstance(result, RolloutLegacy):
            result.rollout_id = rollout_id
            result.final_reward, result.triplets, result.trace = final_reward, triplets, trace
            return result
        return RolloutLegacy(rollout_id=rollout_id, final_reward=final_reward, triplets=triplets, trace=trace)

    async def _run_once(self, use_async: bool) -> bool:
        self.agent.set_runner(self)
        client = self.client
        task: Optional[Task] = await client.poll_next_task_async() if use_async else client.poll_next_task()
        if task is None:
            logger.info("%s Poll returned no task. Exiting.", self._prefix())
            return False
        rollout_id = task.rollout_id
        resources_id = task.resources_id
        if resources_id and use_async:
            update = await client.get_resources_by_id_async(resources_id)
        elif resources_id:
            update = client.get_resources_by_id(resources_id)
        else:
            update = await client.get_latest_resources_async() if use_async else client.get_latest_resources()
        if update is None:
            logger.error("%s Failed to fetch resources. Skipping.", self._prefix(rollout_id))
            return False
        rollout = RolloutLegacy(rollout_id=rollout_id, task=task)
        try:
            try:
                self.agent.on_rollout_start(task, self, self.tracer)
            except Exception:
                logger.exception("%s Exception during on_rollout_start hook.", self._prefix(rollout_id))
            async with self.tracer.trace_context(name=f"rollout_{rollout_id}"):
                started = time.time()
                train = task.mode == "train"
                method: Any
                if use_async:
                    method = self.agent.training_rollout_async if train else self.agent.validation_rollout_async
                else:
                    method = self.agent.training_rollout if train else self.agent.validation_rollout
                if is_v0_1_rollout_api(method):
                    result: Any = method(task.input, rollout_id=rollout_id, resources=update.resources)
                else:
                    result = method(task.input, resources=update.resources, rollout=rollout)
                if use_async:
                    result = await result
            rollout = self._to_rollout_object(result, rollout_id)
            logger.info(
                "%s Completed in %.2fs. Triplet length: %s. Reward: %s", self._prefix(rollout_id),
                time.time() - started, len(rollout.triplets) if rollout.triplets is not None else "N/A",
                rollout.final_reward,
            )  # fmt: skip
        except Exception:
            logger.exception("%s Exception during rollout.", self._prefix(rollout_id))
        finally:
            try:
                self.agent.on_rollout_end(task, rollout, self, self.tracer)
            except Exception:
                logger.exception("%s Exception during on_rollout_end hook.", self._prefix(rollout_id))
            if use_async:
                await client.post_rollout_async(rollout)
            else:
                client.post_rollout(rollout)
        return True

    def run(self) -> bool:  # type: ignore[override]
        """Poll one task and run it (sync agent methods); False when there was none to run."""
        import anyio

        return anyio.run(self._run_once, False)

    async def run_async(self) -> bool:
        """Poll one task and run it (async agent methods); False when there was none to run."""
        return await self._run_once(True)

    def iter(self) -> int:  # type: ignore[override]
        """Run tasks until ``max_tasks`` ran (forever if None); returns how many ran."""
        done = 0
        while self.max_tasks is None or done < self.max_tasks:
            if self.run():
                done += 1
        logger.info("%s Finished sync rollouts. Processed %d tasks.", self._prefix(), done)
        return done

    async def iter_async(self) -> int:
        done = 0
        while self.max_tasks is None or done < self.max_tasks:
            if await self.run_async():
                done += 1
        logger.info("%s Finished async rollouts. Processed %d tasks.", self._prefix(), done)
        return done
