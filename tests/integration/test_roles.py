"""Multi-machine roles: the same Trainer.fit script started as the algorithm machine and as a runner machine, two
processes that share nothing but the AGL_* environment variables and a port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
from agentlightning.utils.server_launcher import free_port

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("roles_script.py")
LIMIT_SECONDS = 120


def start(role: str, port: int, n: int, extra: Dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGL_")}
    env.update({"AGL_CURRENT_ROLE": role, "AGL_SERVER_HOST": "127.0.0.1", "AGL_SERVER_PORT": str(port)})
    # a runner machine stops once the server has been unreachable this long (default 120 s, to ride out restarts)
    env["AGL_STORE_UNAVAILABLE_SECONDS"] = "5"
    env.update(extra or {})
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(n)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> Dict[str, object]:
    try:
        out, err = process.communicate(timeout=LIMIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"{process.args} did not finish within {LIMIT_SECONDS} s; stderr:\n{err[-3000:]}")
    assert process.returncode == 0, f"exit code {process.returncode}; stderr:\n{err[-3000:]}"
    lines: List[str] = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"no summary line; stdout:\n{out}\nstderr:\n{err[-3000:]}"
    return dict(json.loads(lines[-1]))


def test_algorithm_machine_and_runner_machine_from_one_script() -> None:
    port = free_port()
    # the runner machine comes up first: it waits for the algorithm machine's store server
    runner = start("runner", port, 6)
    algorithm = start("algorithm", port, 6)
    algo = finish(algorithm)
    ran = finish(runner)  # stops by itself once the algorithm machine's server went away
    assert algo["role"] == "algorithm" and algo["ran_here"] == 0
    assert algo["statuses"] == ["succeeded"] * 6
    assert algo["workers"] == ["Worker-0"]
    assert ran["role"] == "runner" and ran["rollouts"] == 6 and ran["ran_in"] == [ran["pid"]]


def test_two_runner_machines_share_the_work(tmp_path: Path) -> None:
    port = free_port()
    # Each runner's first rollout waits for the other's: on a busy machine one runner could otherwise finish all 8
    # before the other has reached the server, which then waits for ever for a server that has gone (by design).
    barrier = {"ROLES_BARRIER_DIR": str(tmp_path), "ROLES_BARRIER_COUNT": "2"}
    algorithm = start("algorithm", port, 8)
    runners = [start("runner", port, 8, barrier) for _ in range(2)]
    algo = finish(algorithm)
    done = [finish(r) for r in runners]
    assert algo["statuses"] == ["succeeded"] * 8
    assert sum(int(str(r["rollouts"])) for r in done) == 8
    assert all(int(str(r["rollouts"])) >= 1 for r in done)


def test_bad_role_and_port_are_refused() -> None:
    from agentlightning.execution.client_server import ClientServerExecutionStrategy

    os.environ["AGL_CURRENT_ROLE"] = "trainer"
    try:
        with pytest.raises(ValueError, match="AGL_CURRENT_ROLE"):
            ClientServerExecutionStrategy()
    finally:
        del os.environ["AGL_CURRENT_ROLE"]
