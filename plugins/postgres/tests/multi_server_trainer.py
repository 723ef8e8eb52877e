"""The training script of the multi-server test: ``python multi_server_trainer.py N_TASKS``.

Started twice, as on two machines: with ``AGL_CURRENT_ROLE=algorithm`` (Baseline over N_TASKS tasks, the store a
client of the store servers named by ``AGL_TEST_STORE_URLS``) and with ``AGL_CURRENT_ROLE=runner`` (two runner
processes, the store servers from ``AGL_SERVER_HOST``). Task ``n`` emits the message ``task n``, appends ``n`` to
the file ``AGL_TEST_RUN_LOG`` (one line per run of the agent) and returns the reward ``n % 7``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Dict

import agentlightning as agl
import anyio

TASK_SECONDS = 0.2


@agl.rollout
async def logging_agent(task: Dict[str, Any], llm: agl.LLM) -> float:
    agl.emit_message(f"task {task['n']}")
    with open(os.environ["AGL_TEST_RUN_LOG"], "a") as log:
        log.write(f"{task['n']}\n")
    await anyio.sleep(TASK_SECONDS)
    return float(task["n"] % 7)


def main(n_tasks: int) -> None:
    from agentlightning.types import RolloutConfig

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    algorithm = os.environ.get("AGL_CURRENT_ROLE") == "algorithm"
    trainer = agl.Trainer(
        algorithm=agl.Baseline(polling_interval=0.2, span_verbosity="none", rollout_config=RolloutConfig()),
        store=os.environ["AGL_TEST_STORE_URLS"] if algorithm else None,
        n_runners=2,
        runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.1, "heartbeat_interval": 1.0},
        initial_resources={"llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="unused")},
        progress=False,
    )
    from multi_server_trainer import logging_agent as agent  # by module name (not __main__), for runner processes

    trainer.fit(agent, [{"n": n} for n in range(n_tasks)])


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # runner processes import this module by name
    main(int(sys.argv[1]))
