"""The trainer the fault suite kills: ``python fault_trainer.py STORE_URL N_TASKS``.

Baseline over N_TASKS tasks with two runner processes, on the store served at STORE_URL. Each task ``n`` emits a
message span ``task n`` and the reward ``n % 7``, so a check can tell every rollout's spans from any other's.
Exits 0 once every task is done; run again on the same store, it resumes.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Dict

import agentlightning as agl
import anyio

TASK_SECONDS = float(os.environ.get("AGL_FAULT_TASK_SECONDS", "0.2"))


@agl.rollout
async def steady_agent(task: Dict[str, Any], llm: agl.LLM) -> float:
    agl.emit_message(f"task {task['n']}")
    await anyio.sleep(TASK_SECONDS)
    return float(task["n"] % 7)


def main(url: str, n_tasks: int) -> None:
    from agentlightning.algorithm import Baseline
    from agentlightning.execution import MultiProcessExecutionStrategy
    from agentlightning.trainer import Trainer
    from agentlightning.types import RolloutConfig

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s [trainer] %(name)s: %(message)s")
    # every fault may cost an attempt: retries enough that none makes a task fail
    config = RolloutConfig(unresponsive_seconds=30.0, max_attempts=20, retry_condition=["unresponsive"])
    trainer = Trainer(
        algorithm=Baseline(polling_interval=0.2, span_verbosity="none", max_queue_length=8, rollout_config=config),
        store=url,
        strategy=MultiProcessExecutionStrategy(n_runners=2, store_url=url, max_restarts=20, graceful_timeout=2.0),
        runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.1, "heartbeat_interval": 1.0},
        initial_resources={"llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="unused")},
        progress=False,
    )
    from fault_trainer import steady_agent as agent  # by module name (not __main__), for the runner processes

    trainer.fit(agent, [{"n": n} for n in range(n_tasks)])


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # runner processes import this module by name
    main(sys.argv[1], int(sys.argv[2]))
