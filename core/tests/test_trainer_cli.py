"""``agl dev`` and ``agl eval``: run a real agent module over JSONL data, in process."""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any, Tuple

import pytest
from agentlightning.cli import run

AGENT = """
import agentlightning as agl

@agl.rollout
def agent(task, llm):
    return float(task["x"]) if llm.model == "m" else -1.0

not_an_agent = 3
"""


@pytest.fixture
def workdir(tmp_path: Any, monkeypatch: Any) -> Tuple[Any, str]:
    module = f"cli_agent_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(AGENT)
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps({"x": x}) for x in (0, 1, 2, 5)) + "\n")
    (tmp_path / "res.json").write_text(
        json.dumps({"llm": {"resource_type": "llm", "endpoint": "http://127.0.0.1:9/v1", "model": "m"}})
    )
    monkeypatch.chdir(tmp_path)
    yield tmp_path, module
    sys.modules.pop(module, None)


def test_agl_eval_prints_reward_statistics(workdir: Tuple[Any, str], capsys: Any) -> None:
    _, module = workdir
    code = run(["eval", f"{module}:agent", "--data", "data.jsonl", "--resources", "res.json", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["count"] == 4 and summary["success_rate"] == 1.0
    assert (summary["mean"], summary["min"], summary["max"]) == (2.0, 0.0, 5.0)
    assert summary["std"] == pytest.approx(1.870828693)


def test_agl_dev_runs_baseline_on_a_store_url(workdir: Tuple[Any, str], capsys: Any) -> None:
    tmp_path, module = workdir
    code = run(["dev", f"{module}:agent", "--data", "data.jsonl", "--resources", "res.json", "--store",
                f"sqlite:///{tmp_path}/dev.db"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "success rate: 1.0000" in out and "reward mean:  2.0000" in out
    assert (tmp_path / "dev.db").exists()


def test_agl_dev_without_resources_fails_each_rollout_but_reports(workdir: Tuple[Any, str], capsys: Any) -> None:
    _, module = workdir
    assert run(["dev", f"{module}:agent", "--data", "data.jsonl", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["failed"] == 4 and summary["mean"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "{m}", "--data", "data.jsonl", "--resources", "res.json"], "agent must be MODULE:AGENT"),
        (["eval", "{m}:nope", "--data", "data.jsonl", "--resources", "res.json"], "has no attribute 'nope'"),
        (["eval", "{m}:not_an_agent", "--data", "data.jsonl", "--resources", "res.json"], "not a LitAgent"),
        (["eval", "missing_mod_xyz:agent", "--data", "data.jsonl", "--resources", "res.json"], "cannot import"),
        (["eval", "{m}:agent", "--data", "bad.jsonl", "--resources", "res.json"], "bad.jsonl:2: not valid JSON"),
        (["eval", "{m}:agent", "--data", "none.jsonl", "--resources", "res.json"], "cannot read --data"),
        (["eval", "{m}:agent", "--data", "data.jsonl", "--resources", "badres.json"], "invalid resources"),
    ],
)
def test_bad_input_gets_a_clear_error(workdir: Tuple[Any, str], capsys: Any, argv: Any, message: str) -> None:
    tmp_path, module = workdir
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\n{oops\n')
    (tmp_path / "badres.json").write_text(json.dumps({"llm": {"resource_type": "rocket"}}))
    assert run([a.format(m=module) for a in argv]) == 2
    assert message in capsys.readouterr().err
