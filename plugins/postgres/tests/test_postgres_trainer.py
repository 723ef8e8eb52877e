"""A real training run over two store servers of one PostgreSQL schema, one of them SIGKILLed mid-run.

As deployed (docs/postgres.md): two ``agl store serve --store postgresql://...`` processes; the algorithm machine
(``AGL_CURRENT_ROLE=algorithm``, ``AGL_MANAGED_STORE=0``, its store a client of both servers) and a runner machine
(``AGL_CURRENT_ROLE=runner``, ``AGL_SERVER_HOST=host:port,host:port``, two runner processes) started from one
script. Once a third of the rollouts finished, one server is killed: every rollout still finishes exactly once (one
attempt, the agent run once per task, no retry allowed) and its spans are all stored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import anyio
import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("multi_server_trainer.py")
TASKS = 24
LIMIT_SECONDS = 240


def _serve(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    agl = [sys.executable, "-c", "import sys; from agentlightning.cli import main; sys.exit(main())"]
    with log.open("wb") as err:
        command = [*agl, "store", "serve", "--store", url, "--port", str(port)]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)


def _wait_up(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the store server on port {port} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/agl/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the store server on port {port} did not come up")


async def _finished(url: str) -> List[Any]:
    from agentlightning_postgres import PostgresLightningStore

    store = PostgresLightningStore(url, watchdog_interval=None)
    try:
        return list((await store.query_rollouts(status_in=["succeeded"])).items)
    finally:
        await store.close()


def test_a_trainer_over_two_store_servers_rides_out_one_killed(schema_url: str, tmp_path: Path) -> None:
    pytest.importorskip("agentlightning_server")
    from agentlightning_server.serve import free_port

    ports = [free_port(), free_port()]
    logs = [tmp_path / f"server-{port}.log" for port in ports]
    servers = [_serve(schema_url, port, log) for port, log in zip(ports, logs, strict=True)]
    run_log = tmp_path / "runs.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGL_")}
    env.update(
        {
            "AGL_TEST_RUN_LOG": str(run_log),
            "AGL_TEST_STORE_URLS": ",".join(f"http://127.0.0.1:{port}" for port in ports),
            "AGL_STORE_UNAVAILABLE_SECONDS": "10",  # the runner machine stops this long after both servers went
        }
    )
    roles: Dict[str, Dict[str, str]] = {
        "algorithm": {"AGL_CURRENT_ROLE": "algorithm", "AGL_MANAGED_STORE": "0"},
        "runner": {"AGL_CURRENT_ROLE": "runner", "AGL_SERVER_HOST": ",".join(f"127.0.0.1:{p}" for p in ports)},
    }
    machines: Dict[str, subprocess.Popen[str]] = {}
    try:
        for port, server, log in zip(ports, servers, logs, strict=True):
            _wait_up(port, server, log)
        for role, extra in roles.items():
            machines[role] = subprocess.Popen(
                [sys.executable, str(SCRIPT), str(TASKS)],
                env={**env, **extra},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        deadline = time.monotonic() + LIMIT_SECONDS
        while len(anyio.run(_finished, schema_url)) < TASKS // 3:
            assert time.monotonic() < deadline, "the run made no progress"
            assert machines["algorithm"].poll() is None, machines["algorithm"].communicate()[1][-3000:]
            time.sleep(0.2)
        servers[0].send_signal(signal.SIGKILL)
        servers[0].wait(10)
        assert len(anyio.run(_finished, schema_url)) < TASKS, "the server was killed after the run"
        outputs = {}
        for role in ("algorithm", "runner"):
            if role == "runner":
                servers[1].terminate()  # training is over: the runner machine stops once its servers are gone
                servers[1].wait(30)
            try:
                outputs[role] = machines[role].communicate(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                machines[role].kill()
                pytest.fail(f"the {role} machine did not finish: {machines[role].communicate()[1][-3000:]}")
            code = machines[role].returncode
            assert code == 0, f"the {role} machine exited with {code}: {outputs[role][1][-3000:]}"
    finally:
        for process in [*machines.values(), *servers]:
            if process.poll() is None:
                process.kill()
                process.wait(30)

    runs = sorted(int(line) for line in run_log.read_text().split())
    assert runs == list(range(TASKS)), "a task ran twice or not at all"

    async def verify() -> None:
        from agentlightning.emitter.reward import find_final_reward
        from agentlightning_postgres import PostgresLightningStore

        store = PostgresLightningStore(schema_url, watchdog_interval=None)
        try:
            rollouts = (await store.query_rollouts()).items
            assert len(rollouts) == TASKS, "a retried enqueue was applied twice"
            assert {r.status for r in rollouts} == {"succeeded"}
            seen = set()
            for rollout in rollouts:
                assert len((await store.query_attempts(rollout.rollout_id)).items) == 1
                spans = list((await store.query_spans(rollout.rollout_id)).items)
                n = rollout.input["n"]
                seen.add(n)
                messages = [s.attributes.get("agentlightning.message.body") for s in spans]
                assert [m for m in messages if m is not None] == [f"task {n}"], spans
                assert find_final_reward(spans) == float(n % 7)
            assert seen == set(range(TASKS))
        finally:
            await store.close()

    anyio.run(verify)
