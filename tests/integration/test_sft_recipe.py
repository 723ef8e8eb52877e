"""The SFT recipe of contrib/examples/sft_from_teacher, its four steps as a user runs them: record a scripted teacher
through the LLM proxy, ``agl export`` the rewarded chat records, fine-tune the tiny model, ``agl eval`` it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("agentlightning_litellm")

RECIPE = Path(__file__).resolve().parents[2] / "contrib" / "examples" / "sft_from_teacher"
pytestmark = [pytest.mark.slow, pytest.mark.network]


def _run(tmp_path: Path, *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_record_export_finetune_evaluate(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'teacher.db'}"
    out = _run(tmp_path, str(RECIPE / "record.py"), "--store", store, "--n-train", "200", "--n-val", "60")
    assert "recorded 200 teacher rollouts" in out
    agl = ["-c", "from agentlightning.cli import main; main()"]
    _run(tmp_path, *agl, "export", "--store", store, "--format", "messages", "--status", "succeeded",
         "--min-reward", "1", "-o", "teacher.jsonl", "--no-progress")  # fmt: skip
    records = [json.loads(line) for line in (tmp_path / "teacher.jsonl").read_text().splitlines()]
    assert 0.6 * 200 < len(records) < 0.9 * 200  # the teacher's wrong answers were filtered out
    assert all(r["reward"] == 1.0 and r["messages"][-1]["role"] == "assistant" for r in records)
    tuned = json.loads(_run(tmp_path, str(RECIPE / "finetune.py"), "teacher.jsonl", "--out", "student.pt"))
    assert tuned["examples"] == len(records) and tuned["last_loss"] < tuned["first_loss"] / 10
    evaluated = _run(tmp_path, str(RECIPE / "evaluate.py"), "student.pt", "--data", "data/val.jsonl", "--json")
    summary = json.loads(evaluated)
    assert summary["count"] == 60 and summary["mean"] >= 0.9
