"""One training script for every machine: its role comes from AGL_CURRENT_ROLE (and the store server from
AGL_SERVER_HOST / AGL_SERVER_PORT), as with upstream Agent Lightning v0.3.

    AGL_CURRENT_ROLE=algorithm AGL_SERVER_PORT=4747 python roles_script.py 6   # the algorithm machine
    AGL_CURRENT_ROLE=runner    AGL_SERVER_PORT=4747 python roles_script.py 6   # each runner machine

The algorithm machine prints one JSON line with what its store holds once training is over; a runner machine
prints the pids its agent ran in.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict

import agentlightning as agl
import anyio

RAN_IN = []


def meet_other_runners() -> None:
    """With ROLES_BARRIER_DIR and ROLES_BARRIER_COUNT set, a runner machine's first rollout waits (up to 60 s) until
    that many runner machines have started one, so that each of them is known to have reached the store server."""
    folder, count = os.environ.get("ROLES_BARRIER_DIR"), int(os.environ.get("ROLES_BARRIER_COUNT", "0"))
    if not folder or RAN_IN:
        return
    Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(os.listdir(folder)) < count and time.monotonic() < deadline:
        time.sleep(0.05)


@agl.rollout
def agent(task: Dict[str, Any], prompt_template: agl.PromptTemplate) -> float:
    meet_other_runners()
    RAN_IN.append(os.getpid())
    return float(task["x"]) / 10 if prompt_template.template == "x = {x}" else 0.0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    trainer = agl.Trainer(
        algorithm=agl.Baseline(polling_interval=0.2),
        initial_resources={"prompt_template": agl.PromptTemplate(template="x = {x}", engine="f-string")},
        progress=False,
    )
    trainer.fit(agent, train_dataset=[{"x": i} for i in range(n)])
    role = os.environ.get("AGL_CURRENT_ROLE")
    if role == "runner":
        print(json.dumps({"role": role, "pid": os.getpid(), "ran_in": sorted(set(RAN_IN)), "rollouts": len(RAN_IN)}))
        return

    async def summary() -> Dict[str, Any]:
        rollouts = await trainer.store.query_rollouts()
        workers = await trainer.store.query_workers()
        return {
            "role": role,
            "pid": os.getpid(),
            "statuses": sorted(r.status for r in rollouts),
            "workers": sorted(w.worker_id for w in workers),
            "ran_here": len(RAN_IN),
        }

    print(json.dumps(anyio.run(summary)))


if __name__ == "__main__":
    main()
