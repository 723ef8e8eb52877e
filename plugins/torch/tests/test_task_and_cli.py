"""The quickstart task, the plugin's registrations, light imports, and the command's messages."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

import pytest
from agentlightning_torch.quickstart.task import CATEGORIES, category_of, make_datasets, score_answer
from hypothesis import given
from hypothesis import strategies as st


@given(st.integers(0, 10_000), st.booleans())
def test_datasets_are_disjoint_and_labelled_by_first_letter(seed: int, same_group: bool) -> None:
    train, val = make_datasets(n_train=60, n_val=20, seed=seed, same_group=same_group)
    assert len(train) == 60 and len(val) == 20
    assert not {t["keyword"] for t in train} & {t["keyword"] for t in val}
    for task in train + val:
        assert task["answer"] == category_of(task["keyword"]) and 3 <= len(task["keyword"]) <= 5
        if same_group:
            assert {category_of(ch) for ch in task["keyword"]} == {task["answer"]}


def test_categories_and_scores() -> None:
    assert [category_of(w) for w in ("apple", "fig", "grape", "mango", "nut", "sloe", "tea", "zest")] == list(
        "AABBCCDD"
    )
    assert score_answer("C", "C", "stop") == 1.0
    assert score_answer(" C\n", "C", "stop") == 1.0
    assert score_answer("A", "C", "stop") == 0.1
    assert score_answer("q", "C", "stop") == 0.1  # the shaping rewards the format (one character), not a letter
    assert score_answer("", "C", "stop") == 0.0
    assert score_answer("C", "C", "length") == 0.0  # cut off: never rewarded
    assert score_answer("CC", "C", "stop") == 0.0
    assert score_answer(None, "C", "stop") == 0.0
    with pytest.raises(ValueError, match="must start with one of"):
        category_of("1abc")
    # ignoring the input cannot beat 0.25 + 0.75 * 0.1
    _, val = make_datasets(n_train=10, n_val=400, seed=1)
    best_constant = max(sum(score_answer(c, t["answer"], "stop") for t in val) / len(val) for c in CATEGORIES + "abz")
    assert best_constant <= 0.5


def test_hooks_register_the_algorithm_export_and_command(plugin_manager: Any) -> None:
    import agentlightning_torch.hooks as hooks

    plugin_manager.register(hooks)
    assert plugin_manager.registry("algorithms").get("grpo") is not None
    assert plugin_manager.registry("exports").get("GRPO") is not None
    assert plugin_manager.registry("commands").get("quickstart") is not None
    from agentlightning_torch.grpo import GRPO

    assert plugin_manager.registry("algorithms").get("grpo").load() is GRPO


def test_importing_the_plugin_does_not_import_torch() -> None:
    code = (
        "import sys, agentlightning_torch, agentlightning_torch.hooks, agentlightning_torch.server, "
        "agentlightning_torch.quickstart.agent, agentlightning_torch.quickstart.cli\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'transformers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_apo_without_its_plugin_names_it(capsys: Any, monkeypatch: Any) -> None:
    from agentlightning_torch.quickstart import cli

    monkeypatch.setitem(sys.modules, "agentlightning_apo", None)  # as if not installed
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["--algorithm", "apo"])
    assert args.func(args) == 2
    assert "agentlightning-apo" in capsys.readouterr().err


def test_apo_without_an_endpoint_says_what_to_set(capsys: Any, monkeypatch: Any) -> None:
    pytest.importorskip("agentlightning_apo")
    from agentlightning_torch.quickstart import cli

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["--algorithm", "apo"])
    assert args.func(args) == 2
    assert "OPENAI_BASE_URL" in capsys.readouterr().err


def test_grpo_config_errors_name_the_field() -> None:
    from agentlightning_torch.grpo import GRPO

    with pytest.raises(ValueError, match="group_size"):
        GRPO(group_size=0)
    with pytest.raises(ValueError, match="learning_rate"):
        GRPO(learning_rate=0)
    with pytest.raises(TypeError):
        GRPO(no_such_option=1)


def test_the_progress_line_shows_what_reveals_a_stall() -> None:
    import io

    from agentlightning.trainer import ProgressReporter
    from agentlightning_torch.grpo import StepReport
    from agentlightning_torch.quickstart.cli import step_fields

    stream = io.StringIO()
    reporter = ProgressReporter(stream=stream, log=False, rewards=False)
    show = step_fields(400)
    common = dict(resources_id="rs", rollouts=128, triplets=128, total_rollouts=1000, elapsed=12.0)
    show(StepReport(step=10, kind="val", policy_version=11, mean_reward=0.775, **common), reporter)
    show(
        StepReport(
            step=10,
            kind="train",
            policy_version=11,
            mean_reward=0.8,
            entropy=0.031,
            zero_adv_groups=0.94,
            policy_lag=0,
            stalled_steps=12,
            **common,
        ),  # fmt: skip
        reporter,
    )
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("rollouts: 0 queued")
    for part in ("step 10/400", "policy v11", "val 0.775", "train 0.800", "entropy 0.031", "zero-adv 94%", "lag 0"):
        assert part in last
    assert "stalled 12 steps" in last


def test_grpo_warns_once_when_held_out_reward_stops_improving(caplog: Any) -> None:
    import logging

    from agentlightning_torch.grpo import GRPO

    grpo = GRPO(stall_steps=3, target_val_reward=0.9)
    caplog.set_level(logging.WARNING, logger="agentlightning_torch.grpo")
    grpo._report(0, "val", "rs", 8, 8, [0.775])
    for step in range(6):
        grpo._report(step, "train", "rs", 8, 8, [0.1], entropy=0.02, zero_adv_groups=1.0)
    assert [h.stalled_steps for h in grpo.history if h.kind == "train"] == [0, 1, 2, 3, 4, 5]
    warnings = [r for r in caplog.records if "has not improved for 3 steps" in r.getMessage()]
    assert len(warnings) == 1 and "100% of groups" in warnings[0].getMessage()
    assert "collapsed" in warnings[0].getMessage() and "uniform_kl_coef" in warnings[0].getMessage()


def test_a_stall_while_the_policy_explores_is_not_blamed_on_collapse(caplog: Any) -> None:
    import logging

    from agentlightning_torch.grpo import GRPO

    grpo = GRPO(stall_steps=3)
    caplog.set_level(logging.WARNING, logger="agentlightning_torch.grpo")
    grpo._report(0, "val", "rs", 8, 8, [0.73])
    for step in range(4):
        grpo._report(step, "train", "rs", 8, 8, [0.5], entropy=1.8, zero_adv_groups=0.3)
    (warning,) = [r.getMessage() for r in caplog.records if "has not improved" in r.getMessage()]
    assert "still explores" in warning and "collapsed" not in warning and "30% of groups" in warning


def test_the_report_names_the_dashboard_command_and_how_to_get_it(monkeypatch: Any) -> None:
    import importlib.util

    from agentlightning_torch.quickstart.cli import dashboard_hint

    real_find_spec = importlib.util.find_spec
    url = "sqlite:///runs/q/store.db"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert dashboard_hint(url) == f"agl dashboard --store {url}   (after pip install agentlightning-dashboard)"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: real_find_spec("agentlightning"))
    assert dashboard_hint(url) == f"agl dashboard --store {url}"
