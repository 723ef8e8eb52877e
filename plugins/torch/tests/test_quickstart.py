"""A shortened ``agl quickstart``: the whole loop through the Trainer, runner processes, the policy server, the
SQLite store and GRPO, then a resumed run from its checkpoint."""

from __future__ import annotations

import json
import os
from typing import Any

import anyio
import pytest
from agentlightning.adapter import LlmProxyTraceToTriplet
from agentlightning.store import open_store
from agentlightning_torch.quickstart.cli import run_quickstart
from agentlightning_torch.server import POLICY_VERSION_ATTRIBUTE

pytestmark = pytest.mark.network

SHORT = dict(
    steps=2, group_size=4, batch_size=4, val_every=2, target=None, runners=1, concurrency=16, n_train=40, n_val=8
)


async def _inspect(url: str) -> dict:
    async with open_store(url) as store:
        rollouts = list(await store.query_rollouts(status_in=["succeeded"]))
        versions = list(await store.query_resources())
        triplets, used, rewards = 0, set(), 0
        for rollout in rollouts:
            spans = list(await store.query_spans(rollout.rollout_id, "latest"))
            found = LlmProxyTraceToTriplet().adapt(spans)
            triplets += sum(1 for t in found if t.prompt["token_ids"] and t.response["token_ids"])
            rewards += sum(1 for t in found if t.reward is not None)
            used |= {s.attributes[POLICY_VERSION_ATTRIBUTE] for s in spans if POLICY_VERSION_ATTRIBUTE in s.attributes}
        return {
            "rollouts": len(rollouts),
            "resources": len(versions),
            "triplets": triplets,
            "rewarded": rewards,
            "policy_versions_used": used,
            "modes": {r.mode for r in rollouts},
        }


@pytest.fixture
def plugins(plugin_manager: Any) -> Any:
    """Only the plugins this test needs (the dev environment may hold broken ones); runner processes load theirs."""
    import agentlightning_sqlite.hooks
    import agentlightning_torch.hooks

    plugin_manager.register(agentlightning_sqlite.hooks)
    plugin_manager.register(agentlightning_torch.hooks)
    return plugin_manager


def test_short_quickstart_runs_the_whole_loop(tmp_path: Any, plugins: Any) -> None:
    run_dir = os.path.join(str(tmp_path), "run")
    summary = run_quickstart(run_dir, **SHORT, quiet=True)
    seen = anyio.run(_inspect, summary["store"])
    assert seen["rollouts"] == summary["rollouts"] == 2 * 16 + 2 * 8  # 2 train steps, validation at 0 and at the end
    assert seen["modes"] == {"train", "val"}
    # every rollout left a token-id triplet with its reward
    assert seen["triplets"] == seen["rollouts"] and seen["rewarded"] == seen["rollouts"]
    # policy versions were published, and later rollouts were served by newer ones
    assert summary["policy_versions"] >= 3 and seen["resources"] >= 3
    assert len(seen["policy_versions_used"]) >= 2 and max(seen["policy_versions_used"]) > 1
    kinds = [h["kind"] for h in summary["history"]]
    assert kinds.count("train") == 2 and kinds.count("val") == 2
    with open(summary["curve"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as f:
        written = json.load(f)
    assert written["rollouts"] == summary["rollouts"] and written["steps"] == 2
    # the figures that show a stall: every train step reports entropy, zero-advantage groups and policy lag
    trains = [h for h in written["history"] if h["kind"] == "train"]
    assert all(h["entropy"] is not None and 0 <= h["zero_adv_groups"] <= 1 for h in trains)
    assert written["max_policy_lag"] == 0  # each step waits for its rollouts: served by the weights it updates
    assert "Held-out reward went from" in summary["words"] and "2 steps" in summary["words"]
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "step-2.pt"))
    # the quickstart draws more keywords from the categories with the lowest training reward; the checkpoint keeps
    # each drawn category's recent reward, so a resumed run draws as the stopped one would have
    from agentlightning_torch.checkpoint import load_checkpoint

    focus = load_checkpoint(os.path.join(run_dir, "checkpoints", "step-2.pt"))["focus"]
    assert focus and set(focus) <= set("ABCD") and all(0.0 <= value <= 1.0 for value in focus.values())


@pytest.mark.slow
def test_a_run_pointed_at_its_store_resumes_from_the_last_checkpoint(tmp_path: Any, plugins: Any) -> None:
    run_dir = os.path.join(str(tmp_path), "run")
    first = run_quickstart(run_dir, **{**SHORT, "steps": 1}, quiet=True)
    resumed = run_quickstart(run_dir, **SHORT, quiet=True)
    # the report covers the whole run: the first run's step, then the resumed one, on one clock of training time
    assert [h["step"] for h in resumed["history"] if h["kind"] == "train"] == [0, 1]
    assert resumed["history"][: len(first["history"])] == first["history"]
    elapsed = [h["elapsed"] for h in resumed["history"]]
    assert elapsed == sorted(elapsed) and resumed["train_seconds"] >= first["train_seconds"]
    assert resumed["steps"] == 2 and resumed["rollouts"] > first["rollouts"]
    assert resumed["policy_versions"] > first["policy_versions"]
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "step-2.pt"))


async def _train_steps_started(url: str) -> int:
    async with open_store(url) as store:
        rollouts = await store.query_rollouts(status_in=["succeeded"])
        return max((int((r.metadata or {}).get("step", -1)) for r in rollouts if r.mode == "train"), default=-1)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigterm_writes_a_checkpoint_and_the_resumed_run_sends_nothing_to_the_dead_server(tmp_path: Any) -> None:
    import subprocess
    import sys
    import time

    run_dir = os.path.join(str(tmp_path), "run")
    flags = ["--group-size", "4", "--batch-size", "4", "--val-every", "1000", "--target", "0", "--concurrency", "16"]
    command = [sys.executable, "-c", "import sys; from agentlightning.cli import main; sys.exit(main())", "quickstart"]
    process = subprocess.Popen([*command, "--run-dir", run_dir, "--steps", "50", *flags, "--quiet"])
    url = "sqlite:///" + os.path.join(run_dir, "store.db")
    try:
        deadline = time.monotonic() + 300
        while not os.path.exists(os.path.join(run_dir, "store.db")) or anyio.run(_train_steps_started, url) < 2:
            assert process.poll() is None, "the quickstart ended before it was stopped"
            assert time.monotonic() < deadline, "no training step in time"
            time.sleep(0.5)
        process.terminate()  # SIGTERM
        assert process.wait(120) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    checkpoints = sorted(os.listdir(os.path.join(run_dir, "checkpoints")))
    (written,) = [name for name in checkpoints if name.startswith("step-")]
    step = int(written[len("step-") : -len(".pt")])
    assert 2 <= step < 10  # not a periodic one (every 10 steps): written on SIGTERM

    resumed_at = time.time()
    resumed = run_quickstart(
        run_dir, steps=step + 1, group_size=4, batch_size=4, val_every=1000, target=None, concurrency=16, quiet=True
    )
    assert [h["step"] for h in resumed["history"] if h["kind"] == "train"] == list(range(step + 1))

    async def failed_since_resume() -> list:
        async with open_store(url) as store:
            failed = []
            for rollout in await store.query_rollouts(status_in=["failed"]):
                attempts = await store.query_attempts(rollout.rollout_id)
                failed += [a.attempt_id for a in attempts if a.start_time >= resumed_at and a.status == "failed"]
            return failed

    # what the stopped run left queued or in flight was cancelled, not sent to its dead policy server (rollouts in
    # flight when it stopped may have failed then, as its policy server stopped before its runners)
    assert anyio.run(failed_since_resume) == []
