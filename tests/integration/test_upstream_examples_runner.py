"""The upstream-examples runner: its scripted model answers each example's kind of call, its report names the cause."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

RUNNER = Path(__file__).parents[1] / "compat" / "run_upstream_examples.py"


@pytest.fixture(scope="module")
def runner() -> Any:
    spec = importlib.util.spec_from_file_location("run_upstream_examples", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_scripted_model_answers_each_kind_of_call(runner: Any) -> None:
    from agentlightning.testing.openai_server import Reply

    tools = [{"type": "function", "function": {"name": "get_rooms_and_availability"}}]
    call = runner.example_model({"messages": [{"role": "user", "content": "Find a room"}], "tools": tools})
    assert isinstance(call, Reply) and call.tool_calls[0].name == "get_rooms_and_availability"
    after_tool = runner.example_model({"messages": [{"role": "tool", "content": "{}"}], "tools": tools})
    assert after_tool.startswith("final_choice:")
    judged = runner.example_model(
        {
            "messages": [{"role": "user", "content": "output: Orion expected: Orion"}],
            "response_format": {"type": "json_schema"},
        }
    )
    assert json.loads(judged)["score"] == 1.0
    assert float(runner.example_model({"messages": [{"role": "user", "content": "Return only a number"}]})) > 0
    edit = runner.example_model(
        {"messages": [{"role": "user", "content": "Prompt template:\n\nFind {x} now.\n\nCritique:\n\nvague"}]}
    )
    assert edit.startswith("Find {x} now.") and edit != "Find {x} now."
    assert "chatgpt" in runner.example_model({"messages": [{"role": "user", "content": "What's your name?"}]}).lower()


def test_reason_is_the_last_exception_line(runner: Any) -> None:
    output = "Traceback (most recent call last):\n  File x\nImportError: cannot import name 'y'\nlater noise\n"
    assert runner._reason(output) == "ImportError: cannot import name 'y'"
    assert runner._reason("just text\n") == "just text"


def test_list_and_missing_checkout(runner: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.main(["--upstream", str(tmp_path), "--list"]) == 0
    assert "apo/room_selector" in capsys.readouterr().out
    assert runner.main(["--upstream", str(tmp_path)]) == 2
