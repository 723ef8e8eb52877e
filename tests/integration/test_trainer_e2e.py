"""End to end: Trainer + Baseline + runner processes + a plain-openai agent against a local OpenAI-compatible server.

Multi-process and crash tests are marked slow (they spawn processes; they run once in CI, on Python 3.11).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Dict, Iterator, List

import agentlightning as agl
import anyio
import pytest
from agentlightning.algorithm import Baseline
from agentlightning.testing.openai_server import OpenAITestServer
from agentlightning.trainer import Trainer
from agentlightning.types import RolloutConfig

pytestmark = pytest.mark.slow

openai = pytest.importorskip("openai")


def _instrument() -> None:
    from agentlightning.instrumentation import instrument_openai, is_openai_instrumented

    if not is_openai_instrumented():
        instrument_openai()


@agl.rollout
async def echo_agent(task: Dict[str, Any], llm: agl.LLM) -> float:
    """Ask the model; reward 1 when it answers what the task expects (the test server echoes the question)."""
    _instrument()
    client = openai.AsyncOpenAI(base_url=llm.endpoint, api_key="test", max_retries=2)
    try:
        response = await client.chat.completions.create(
            model=llm.model, messages=[{"role": "user", "content": task["question"]}]
        )
    finally:
        await client.close()
    if task.get("sleep"):
        await anyio.sleep(task["sleep"])
    return 1.0 if response.choices[0].message.content == task["answer"] else 0.0


def tasks(n: int, sleep: float = 0.0) -> List[Dict[str, Any]]:
    return [{"question": f"q{i}", "answer": f"echo: q{i}" if i % 4 else "no", "sleep": sleep} for i in range(n)]


@pytest.fixture(scope="module")
def llm_server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server


def make_trainer(server: OpenAITestServer, store: Any, **baseline: Any) -> Trainer:
    baseline.setdefault("polling_interval", 0.2)
    baseline.setdefault("span_verbosity", "none")
    baseline.setdefault("max_queue_length", 32)
    return Trainer(
        algorithm=Baseline(**baseline),
        store=store,
        n_runners=4,
        strategy="multiprocess",
        runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.1, "heartbeat_interval": 0.5},
        initial_resources={"llm": agl.LLM(endpoint=server.base_url, model="test-model")},
    )


def check_store(trainer: Trainer, n: int) -> None:
    async def check() -> None:
        store = trainer.store
        rollouts = await store.query_rollouts()
        assert len(rollouts) == n
        assert {r.status for r in rollouts} == {"succeeded"}
        rewards = []
        worked = set()
        for rollout in rollouts:
            worked.add(rollout.attempt.worker_id)
            spans = list(await store.query_spans(rollout.rollout_id, "latest"))
            names = {s.name for s in spans}
            assert "openai.chat.completion" in names and "agentlightning.annotation" in names
            rewards.append(agl.find_final_reward(spans))
        assert sorted(set(rewards)) == [0.0, 1.0] and sum(rewards) == n - (n + 3) // 4
        workers = {w.worker_id: w for w in await store.query_workers()}
        assert worked <= set(workers) and all(w.heartbeat_stats for w in workers.values())

    anyio.run(check)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_four_runner_processes_complete_200_rollouts(llm_server: OpenAITestServer, tmp_path: Any, backend: str) -> None:
    store = None if backend == "memory" else f"sqlite:///{tmp_path}/run.db"
    trainer = make_trainer(llm_server, store)
    trainer.fit(echo_agent, tasks(200))
    summary = trainer.algorithm.summary()  # type: ignore[union-attr]
    assert summary["count"] == 200 and summary["success_rate"] == 1.0 and summary["mean"] == 150 / 200
    check_store(trainer, 200)
    assert not [p for p in trainer.strategy.processes if p.is_alive()]  # type: ignore[attr-defined]


def test_a_runner_killed_mid_rollout_costs_only_that_attempt(llm_server: OpenAITestServer, tmp_path: Any) -> None:
    config = RolloutConfig(unresponsive_seconds=3.0, max_attempts=3, retry_condition=["unresponsive"])
    trainer = make_trainer(llm_server, f"sqlite:///{tmp_path}/run.db", rollout_config=config)
    killed: List[int] = []

    def killer() -> None:
        strategy: Any = trainer.strategy
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            time.sleep(0.2)
            try:
                worker = anyio.run(trainer.store.get_worker_by_id, "Worker-1")
            except Exception:  # noqa: BLE001, S112 - the store may be busy or not open yet: poll again
                continue
            if worker is None or worker.status != "busy":
                continue
            for process in strategy.processes:
                if process.name == "agl-runner-1" and process.is_alive():
                    os.kill(process.pid, signal.SIGKILL)
                    killed.append(process.pid)
                    return

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    trainer.fit(echo_agent, tasks(40, sleep=0.4))
    thread.join(5)
    assert killed, "the runner was never seen busy"
    summary = trainer.algorithm.summary()  # type: ignore[union-attr]
    assert summary["count"] == 40 and summary["success_rate"] == 1.0

    async def retried() -> List[str]:
        out = []
        for rollout in await trainer.store.query_rollouts():
            attempts = await trainer.store.query_attempts(rollout.rollout_id)
            if len(attempts) > 1:
                assert attempts[0].status == "unresponsive" and attempts[-1].status == "succeeded"
                out.append(rollout.rollout_id)
        return out

    assert len(anyio.run(retried)) == 1
    assert trainer.strategy.restarts == {1: 1}  # type: ignore[attr-defined]


SCRIPT = textwrap.dedent(
    """
    import sys
    import agentlightning as agl
    from agentlightning.algorithm import Baseline
    from agentlightning.trainer import Trainer

    @agl.rollout
    async def slow_agent(task, llm):
        import os
        import anyio
        # tasks 0-3 finish; the others wait until the file named by AGL_TEST_GO exists (the second run)
        while task >= 4 and not os.path.exists(os.environ["AGL_TEST_GO"]):
            await anyio.sleep(0.1)
        return 1.0

    if __name__ == "__main__":
        trainer = Trainer(
            algorithm=Baseline(polling_interval=0.2, span_verbosity="none", max_queue_length=8),
            store=sys.argv[1],
            n_runners=2,
            strategy="multiprocess",
            runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.1},
            initial_resources={"llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="m")},
            progress=False,
        )
        trainer.fit(slow_agent, list(range(30)))
        print("FIT DONE", flush=True)
    """
)


def _children(pid: int) -> List[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def _statuses(url: str) -> Dict[str, str]:
    from agentlightning.store import open_store

    async with open_store(url) as store:
        return {r.rollout_id: r.status for r in await store.query_rollouts()}


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_ctrl_c_stops_everything_quickly_and_fit_resumes(tmp_path: Any) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    url = f"sqlite:///{tmp_path}/run.db"
    go = tmp_path / "go"
    env = {**os.environ, "AGL_TEST_GO": str(go)}
    proc = subprocess.Popen(
        [sys.executable, str(script), url], cwd=tmp_path, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.3)
            if (tmp_path / "run.db").exists():
                done = [s for s in anyio.run(_statuses, url).values() if s == "succeeded"]
                if len(done) >= 4:
                    break
        children = _children(proc.pid)
        assert len(children) >= 2  # the runner processes (and the resource tracker)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)  # a stop that waited for the blocked rollouts would never come
        assert proc.returncode != 0  # KeyboardInterrupt
        deadline = time.monotonic() + 30
        while [pid for pid in children if _alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    before = anyio.run(_statuses, url)
    finished_before = {rid for rid, status in before.items() if status == "succeeded"}
    assert len(finished_before) == 4  # tasks 0-3; the others were blocked when Ctrl-C came

    go.touch()
    rerun = subprocess.run(
        [sys.executable, str(script), url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "FIT DONE" in rerun.stdout
    after = anyio.run(_statuses, url)
    assert len(after) == 30 and set(after.values()) == {"succeeded"}
    assert finished_before <= set(after)  # finished rollouts were kept, not redone
