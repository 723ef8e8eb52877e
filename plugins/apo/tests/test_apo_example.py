"""The room-selector example's script, run the way ``agl quickstart --algorithm apo`` runs it, against the local
OpenAI-compatible test server given by the environment."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from agentlightning.testing.openai_server import OpenAITestServer
from agentlightning_apo.quickstart import main as quickstart_main
from apo_scripted import GOOD_PROMPT, World, rs

pytest.importorskip("openai")


def test_dataset_is_bundled_and_graded_by_the_policy() -> None:
    train, val = rs.load_tasks("train"), rs.load_tasks("val")
    assert len(train) == 24 and len(val) == 24
    assert not {t["id"] for t in train} & {t["id"] for t in val}
    for task in train + val:
        assert rs.best_room(task) == task["expected_choice"]
        assert rs.grade(task, task["expected_choice"]) == 1.0
        assert rs.grade(task, "R99") == 0.0
    assert rs.parse_choice("Maybe R2... **Final answer:** R5") == "R5"
    assert rs.parse_choice("R3 looks good") == "R3" and rs.parse_choice(None) is None
    with pytest.raises(ValueError, match="no split 'test'"):
        rs.load_tasks("test")


def test_quickstart_runs_the_example_against_the_configured_endpoint(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    with OpenAITestServer(World()) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        monkeypatch.setenv("AGENT_MODEL", "agent-model")
        monkeypatch.setenv("APO_GRADIENT_MODEL", "critic-model")
        monkeypatch.setenv("APO_EDIT_MODEL", "editor-model")
        module = __import__("run_apo")
        argv = ["--runners", "1", "--train-limit", "2", "--val-limit", "4", "--rounds", "1", "--beam-width", "1",
                "--branch-factor", "1", "--gradient-batch-size", "1", "--val-batch-size", "4"]  # fmt: skip
        monkeypatch.setattr(module, "quickstart_argv", lambda ns: ["--run-dir", str(ns.run_dir), "--quiet", *argv])
        code = quickstart_main(argparse.Namespace(run_dir=str(tmp_path / "run"), runners=1, seed=0, quiet=True))
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished" and summary["best_template"] == GOOD_PROMPT
    assert summary["best_score"] == 1.0 > summary["seed_score"]
    assert summary["store"].startswith("sqlite:///") and (tmp_path / "run" / "store.db").is_file()
    assert (tmp_path / "run" / "apo_report.md").read_text().startswith("# APO run `apo`")


@pytest.mark.slow
def test_agl_quickstart_algorithm_apo_runs_the_whole_example(tmp_path: Path) -> None:
    """The real command, in its own process, on the full bundled dataset with two runner processes."""
    import os
    import subprocess
    import sys

    from agentlightning.plugins import get_plugin_manager

    if "quickstart" not in get_plugin_manager().registry("commands"):
        pytest.skip("agl quickstart comes with agentlightning-torch, which is not installed")
    with OpenAITestServer(World()) as srv:
        env = dict(os.environ, OPENAI_BASE_URL=srv.base_url, OPENAI_API_KEY="test", AGENT_MODEL="agent-model",
                   APO_GRADIENT_MODEL="critic-model", APO_EDIT_MODEL="editor-model")  # fmt: skip
        code = "from agentlightning.cli import main; raise SystemExit(main())"
        run_dir = tmp_path / "run"
        argv = ["quickstart", "--algorithm", "apo", "--run-dir", str(run_dir), "--runners", "2", "--quiet"]
        out = subprocess.run(
            [sys.executable, "-c", code, *argv],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout[out.stdout.index("{") :])
    assert summary["rounds_done"] == 2 and summary["best_template"] == GOOD_PROMPT
    assert summary["best_score"] == 1.0 > summary["seed_score"]
    assert (run_dir / "apo_report.json").is_file() and (run_dir / "store.db").is_file()
