"""Runner processes that die (a segfault, an OOM kill): the run fails clearly when none is left, and never hangs.

Multi-process and crash tests: marked slow (they run once in CI, on Python 3.11). Each is bounded by a pytest timeout.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, Dict, List

import agentlightning as agl
import anyio
import pytest
from agentlightning.algorithm import Baseline
from agentlightning.execution import MultiProcessExecutionStrategy, RunnersExhaustedError
from agentlightning.execution.supervision import describe_exit
from agentlightning.trainer import Trainer
from agentlightning.types import RolloutConfig

RUNNER = {"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.05, "heartbeat_interval": 0.5}


@agl.rollout
def kill_myself(task: Dict[str, Any], llm: agl.LLM) -> float:
    """SIGKILL this runner process, as the kernel's OOM killer would; once only when the task names a marker file
    (then later attempts succeed)."""
    marker = task.get("once")
    if marker is None or not os.path.exists(marker):
        if marker is not None:
            Path(marker).write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
    return 1.0


def make_trainer(store: str, *, max_restarts: int, rollout_config: Any) -> Trainer:
    return Trainer(
        algorithm=Baseline(polling_interval=0.1, span_verbosity="none", rollout_config=rollout_config),
        store=store,
        strategy=MultiProcessExecutionStrategy(n_runners=1, store_url=store, max_restarts=max_restarts),
        runner=RUNNER,
        progress=False,
        initial_resources={"llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="unused")},
    )


def attempts_by_status(store: Any) -> Dict[str, List[str]]:
    async def collect() -> Dict[str, List[str]]:
        out: Dict[str, List[str]] = {}
        for rollout in await store.query_rollouts():
            statuses = [a.status for a in await store.query_attempts(rollout.rollout_id)]
            out.setdefault(rollout.status, []).extend(statuses)
        return out

    return anyio.run(collect)


def test_describe_exit_names_the_signal() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by signal SIGKILL (exit code -9)"
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(None) == "no exit code"


@pytest.mark.slow
@pytest.mark.timeout(180, method="thread")  # a hang inside the event loop ends the run too
def test_runners_that_keep_dying_fail_the_run_with_the_cause(tmp_path: Path) -> None:
    config = RolloutConfig(unresponsive_seconds=2.0, max_attempts=2, retry_condition=["unresponsive"])
    store = f"sqlite:///{tmp_path}/run.db"
    trainer = make_trainer(store, max_restarts=1, rollout_config=config)
    with pytest.raises(RunnersExhaustedError, match="runner 0: killed by signal SIGKILL") as raised:
        trainer.dev(kill_myself, [{"n": 0}, {"n": 1}])
    assert "max_restarts=1" in str(raised.value)
    # the store is left consistent: no attempt claims to be in flight, every rollout is finished or still queued
    statuses = attempts_by_status(trainer.store)
    assert set(statuses) <= {"failed", "queuing", "requeuing"}, statuses
    in_flight = [s for attempts in statuses.values() for s in attempts if s in ("preparing", "running")]
    assert in_flight == [] and statuses, statuses
    assert sum(len(a) for a in statuses.values()) == 2  # two deaths, two attempts: each marked unresponsive
    assert {s for a in statuses.values() for s in a} == {"unresponsive"}


@pytest.mark.slow
@pytest.mark.timeout(180, method="thread")  # a hang inside the event loop ends the run too
def test_without_a_rollout_config_a_dead_runners_attempt_fails_instead_of_hanging(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/run.db"
    trainer = make_trainer(store, max_restarts=3, rollout_config=None)
    trainer.dev(kill_myself, [{"once": str(tmp_path / "killed")}, {"n": 1, "once": str(tmp_path / "killed")}])
    outcomes = sorted(o.status for o in trainer.algorithm.outcomes)  # type: ignore[union-attr]
    assert outcomes == ["failed", "succeeded"]
    statuses = attempts_by_status(trainer.store)
    assert statuses == {"failed": ["unresponsive"], "succeeded": ["succeeded"]}
    assert trainer.strategy.restarts == {0: 1}  # type: ignore[attr-defined]


@agl.rollout
async def double(task: Any, llm: agl.LLM) -> float:
    return task * 2.0 if isinstance(task, int) else 0.0


def test_a_resumed_run_marks_the_attempts_a_killed_run_left_in_flight(tmp_path: Path) -> None:
    from agentlightning.store import open_store

    url = f"sqlite:///{tmp_path}/run.db"

    async def killed_run() -> str:  # what a SIGKILLed trainer leaves: an attempt "running" for ever
        store = open_store(url)
        try:
            rollout = await store.enqueue_rollout({"foreign": True})
            claimed = await store.dequeue_rollout(worker_id="Worker-0")
            assert claimed is not None
            await store.update_attempt(rollout.rollout_id, claimed.attempt.attempt_id, status="running")
            return rollout.rollout_id
        finally:
            await store.close()

    left = anyio.run(killed_run)
    trainer = Trainer(
        algorithm=Baseline(polling_interval=0.05, span_verbosity="none"),
        store=url,
        strategy="inprocess",
        runner=RUNNER,
        progress=False,
        initial_resources={"llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="unused")},
    )
    trainer.dev(double, [1, 2])
    assert trainer.algorithm.summary()["success_rate"] == 1.0  # type: ignore[union-attr]

    async def check() -> None:
        attempts = await trainer.store.query_attempts(left)
        assert attempts[0].status == "unresponsive"
        rollout = await trainer.store.get_rollout_by_id(left)
        assert rollout is not None and rollout.status != "failed"  # requeued: the interruption was the run's
        await trainer.store.close()

    anyio.run(check)
