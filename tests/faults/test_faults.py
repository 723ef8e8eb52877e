"""Fault suite: a real run on SQLite (store server, trainer and runner processes) hurt at random points.

Checks after every run: every task accounted for exactly once (one rollout, succeeded, its spans and reward there),
no attempt left running, and the run finishes. ``nox -s faults`` runs this directory. Knobs (environment):
``AGL_FAULT_SEED`` (default: a new seed each run, printed), ``AGL_FAULT_COUNT`` (faults per run, default 6),
``AGL_FAULT_TASKS`` (default 60), ``AGL_FAULT_REPORT`` (a JSON file the figures are appended to).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
from harness import Fault, FaultRun, fault_times

pytest.importorskip("agentlightning_sqlite")
pytest.importorskip("agentlightning_server")
pytest.importorskip("psutil")

pytestmark = [pytest.mark.network, pytest.mark.timeout(900)]


def _report(figures: Dict[str, Any]) -> None:
    print(json.dumps(figures))
    path = os.environ.get("AGL_FAULT_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(figures) + "\n")


def _store_away(tmp_path: Path, gap: float, unavailable_seconds: Any) -> None:
    run = FaultRun(tmp_path, n_tasks=20, unavailable_seconds=unavailable_seconds)
    try:
        run.start_server()
        run.start_trainer()
        deadline = time.monotonic() + 300
        done = run.wait_for(4, deadline)
        assert run.trainer is not None and run.trainer.poll() is None, f"finished too soon ({done} done)"
        fault = Fault("store", at=time.monotonic(), done_before=done, gap=gap)
        run.kill_server()
        time.sleep(gap)  # the fault itself: how long the store server stays away
        run.start_server()
        run.wait_recovered(fault, deadline)
        assert run.trainer.wait(max(1.0, deadline - time.monotonic())) == 0, run.trainer_log()[-4000:]
        audit = run.audit()
        assert "waiting up to" in run.trainer_log()  # the algorithm and runners said they were waiting
        _report({"test": "store_away", "gap": gap, "recovered_after": round(fault.recovered_after, 2), **audit})
    finally:
        run.close()


def test_a_run_rides_out_its_store_server_away_for_a_few_seconds(tmp_path: Path) -> None:
    _store_away(tmp_path, gap=3.0, unavailable_seconds=30.0)


@pytest.mark.slow
def test_a_run_rides_out_its_store_server_away_longer_than_the_old_retry_budget(tmp_path: Path) -> None:
    """15 s away: beyond the ~4-12 s the client used to retry for; the default wait (120 s) covers it."""
    _store_away(tmp_path, gap=15.0, unavailable_seconds=None)


def test_runners_store_server_and_trainer_killed_at_random_points(tmp_path: Path) -> None:
    seed = int(os.environ.get("AGL_FAULT_SEED") or random.SystemRandom().randrange(1 << 30))
    count = int(os.environ.get("AGL_FAULT_COUNT", "6"))
    n_tasks = int(os.environ.get("AGL_FAULT_TASKS", "60"))
    print(f"fault suite seed {seed} (AGL_FAULT_SEED={seed} replays it)")
    rng = random.Random(seed)
    kinds = [("runner", "store", "trainer")[i % 3] for i in range(count)]
    rng.shuffle(kinds)
    points = sorted(rng.sample(range(2, n_tasks - 4), count))  # inject once this many rollouts succeeded
    run = FaultRun(tmp_path, n_tasks=n_tasks, unavailable_seconds=60.0)
    started = time.monotonic()
    deadline = started + 600
    skipped: List[str] = []
    try:
        run.start_server()
        run.start_trainer()
        for kind, point in zip(kinds, points, strict=True):
            done = run.wait_for(point, deadline)
            if run.trainer is None or run.trainer.poll() is not None:
                skipped.append(kind)  # the run finished first
                continue
            time.sleep(rng.uniform(0.0, 0.5))  # a random point inside the rollouts in flight
            fault = Fault(kind, at=time.monotonic(), done_before=run.succeeded() or done)
            if kind == "runner":
                if not run.kill_runner(rng.randrange(2)):
                    skipped.append(kind)  # no runner process up at this moment (a restart in progress)
                    continue
            elif kind == "store":
                fault.gap = rng.uniform(1.0, 6.0)
                run.kill_server()
                time.sleep(fault.gap)  # the fault itself: how long the store server stays away
                run.start_server()
            else:
                run.kill_trainer()
                fault.at_wall = time.time()  # its runners are gone too: only the next trainer's work counts
                run.start_trainer()  # resumes the run on the same store
            run.faults.append(fault)
            run.wait_recovered(fault, deadline)  # a rollout started after the fault succeeded
        assert run.trainer is not None
        rc = run.trainer.wait(max(1.0, deadline - time.monotonic()))
        assert rc == 0, f"seed {seed}: trainer exited {rc}\n{run.trainer_log()[-4000:]}"
        audit = run.audit()
    finally:
        run.close()
    mean, worst = fault_times(run.faults)
    by_kind: Dict[str, List[float]] = {}
    for fault in run.faults:
        assert fault.recovered_after is not None
        by_kind.setdefault(fault.kind, []).append(round(fault.recovered_after - fault.gap, 2))
    _report(
        {
            "test": "random_faults", "seed": seed, "tasks": n_tasks, "injected": len(run.faults),
            "recovered": sum(1 for f in run.faults if f.recovered_after is not None), "skipped": skipped,
            "recover_seconds_by_kind": by_kind, "store_gaps": [round(f.gap, 2) for f in run.faults if f.gap],
            "mean_recover": round(mean, 2), "worst_recover": round(worst, 2),
            "wall_seconds": round(time.monotonic() - started, 1), "trainer_starts": run.trainer_starts, **audit,
        }
    )  # fmt: skip
    assert len(run.faults) >= count - len(skipped)
