"""APO's configuration, prompts, registration and report, without running rollouts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import agentlightning as agl
import anyio
import pytest
from agentlightning_apo import (
    APO,
    APOState,
    CandidateRecord,
    Evaluation,
    PromptFile,
    RolloutResult,
    VersionedPromptTemplate,
)
from agentlightning_apo import hooks as apo_hooks
from agentlightning_apo.prompting import BUILTIN_CRITIQUE_PROMPTS, BUILTIN_EDIT_PROMPTS, format_experiments
from agentlightning_apo.report import write_report


def test_defaults_match_upstream() -> None:
    apo = APO()
    assert (apo.gradient_model, apo.apply_edit_model) == ("gpt-5-mini", "gpt-4.1-mini")
    assert (apo.diversity_temperature, apo.gradient_batch_size, apo.val_batch_size) == (1.0, 4, 16)
    assert (apo.beam_width, apo.branch_factor, apo.beam_rounds) == (4, 4, 3)
    assert apo.rollout_batch_timeout == 3600.0 and apo.run_initial_validation is True
    assert apo.get_best_score() == float("-inf")
    with pytest.raises(ValueError, match="No best prompt found"):
        apo.get_best_prompt()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beam_width": 0}, "beam_width must be an integer >= 1, got 0"),
        ({"branch_factor": 1.5}, "branch_factor must be an integer >= 1"),
        ({"beam_rounds": -1}, "beam_rounds must be an integer >= 0"),
        ({"rollout_batch_timeout": 0}, "rollout_batch_timeout must be > 0"),
        ({"run_name": "a b"}, "run_name must be letters"),
        ({"edit_prompts": []}, "at least one edit prompt"),
        ({"critique_prompts": ["no-such-prompt"]}, "neither a built-in prompt"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs: Any, message: str) -> None:
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        APO(**kwargs)


def test_the_seed_is_the_first_prompt_template_and_datasets_are_required() -> None:
    apo = APO(report_path=None)
    with pytest.raises(ValueError, match="needs initial resources"):
        apo.get_seed_prompt_template()
    apo.set_initial_resources({"llm": agl.LLM(endpoint="http://127.0.0.1:1/v1", model="m")})
    with pytest.raises(ValueError, match=r"No PromptTemplate found in the initial resources \(llm\)"):
        apo.get_seed_prompt_template()
    first, second = agl.PromptTemplate(template="a {x}"), agl.PromptTemplate(template="b")
    apo.set_initial_resources({"llm": agl.LLM(endpoint="e", model="m"), "p1": first, "p2": second})
    assert apo.get_seed_prompt_template() == ("p1", first)
    with pytest.raises(ValueError, match="train_dataset is required"):
        anyio.run(apo.run, [], [1])
    with pytest.raises(ValueError, match="val_dataset is required"):
        anyio.run(apo.run, [1], None)


def test_any_adapter_other_than_trace_to_messages_is_replaced() -> None:
    apo = APO()
    triplets = agl.TracerTraceToTriplet()
    apo.set_adapter(triplets)
    assert isinstance(apo.get_adapter(), agl.TraceToMessages)
    mine = agl.TraceToMessages()
    other = APO()
    other.set_adapter(mine)
    assert other.get_adapter() is mine


def test_registered_as_algorithm_apo_and_exported(plugin_manager: Any) -> None:
    plugin_manager.register(apo_hooks, name="apo")
    assert "apo" in plugin_manager.registry("algorithms")
    assert plugin_manager.registry("algorithms").get("apo").load() is APO


def test_trainer_builds_apo_by_name_through_the_installed_plugin() -> None:
    trainer = agl.Trainer(algorithm={"type": "apo", "beam_rounds": 1, "report_path": None}, progress=False)
    assert isinstance(trainer.algorithm, APO) and trainer.algorithm.beam_rounds == 1
    assert agl.APO is APO


def test_importing_the_plugin_does_not_import_openai() -> None:
    code = "import agentlightning_apo, agentlightning_apo.hooks, sys; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_builtin_prompts_fill_every_slot() -> None:
    for name in BUILTIN_CRITIQUE_PROMPTS:
        prompt = PromptFile.load(name)
        assert prompt.slots() == {"prompt_template", "experiments"}
        messages = prompt.messages({"prompt_template": "T {x}", "experiments": "E"})
        assert messages[-1]["role"] == "user" and "T {x}" in messages[-1]["content"]
        assert "{{" not in json.dumps(messages)
    for name in BUILTIN_EDIT_PROMPTS:
        prompt = PromptFile.load(name)
        assert prompt.slots() == {"prompt_template", "critique"}
        assert [m["role"] for m in prompt.messages({"prompt_template": "T", "critique": "C"})] == ["system", "user"]
    assert (
        PromptFile.load("critique_bullets")
        .messages({"prompt_template": "", "experiments": ""})[0]["content"]
        .startswith("You optimize a prompt template.")
    )


def test_custom_prompt_files(tmp_path: Path) -> None:
    path = tmp_path / "mine.md"
    path.write_text("<<<system>>>\nBe terse.\n<<<user>>>\nFix {{prompt_template}} per {{critique}}.\n")
    apo = APO(edit_prompts=[str(path)])
    assert apo.edit_prompts[0].name == "mine"
    assert apo.edit_prompts[0].messages({"prompt_template": "{a}", "critique": "c"}) == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Fix {a} per c."},
    ]
    bad = tmp_path / "bad.md"
    bad.write_text("no markers here")
    with pytest.raises(ValueError, match="expected sections that start with"):
        APO(edit_prompts=[str(bad)])
    poml_file = tmp_path / "x.poml"
    poml_file.write_text("<poml><p>{{ critique }}</p></poml>")
    prompt = PromptFile.load(str(poml_file))
    try:
        import poml  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"agentlightning-apo\[poml\]"):
            prompt.messages({"critique": "c"})


def test_experiments_show_each_message_once() -> None:
    first = {"messages": [{"role": "user", "content": "Book it"}, {"role": "assistant", "content": None,
             "tool_calls": [{"function": {"name": "rooms", "arguments": "{}"}}]}], "tools": None}  # fmt: skip
    second = {"messages": [*first["messages"], {"role": "tool", "content": "[...]"},
              {"role": "assistant", "content": "Final answer: R2"}], "tools": None}  # fmt: skip
    text = format_experiments(
        [RolloutResult(rollout_id="r", status="succeeded", final_reward=0.5, messages=[first, second])]
    )
    assert text.count("Book it") == 1 and "-> calls rooms({})" in text and "Final answer: R2" in text
    assert text.startswith("### Run 1: status succeeded, final reward 0.5")
    assert format_experiments([]) == "(no runs)"


def test_state_round_trips_and_reports(tmp_path: Path) -> None:
    state = APOState(run_name="apo", resource_name="p", seed_template="a {x}", seed_engine="f-string")
    state.candidates["v0"] = CandidateRecord(version="v0", template="a {x}", engine="f-string", round=0)
    state.candidates["v0"].evaluations.append(
        Evaluation(round=0, split="val_full", score=0.25, n_tasks=4, n_finished=4)
    )
    state.best_version, state.best_score = "v0", 0.25
    again = APOState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    with pytest.raises(ValueError, match="not an APO state of format 1"):
        APOState.from_dict({"format": 99})
    json_path, md_path = write_report(state, str(tmp_path / "sub" / "rep"))
    assert json.loads(Path(json_path).read_text())["summary"]["seed_score"] == 0.25
    assert "a {x}" in Path(md_path).read_text()


def test_quickstart_finds_the_example() -> None:
    from agentlightning_apo.examples import load_room_selector, room_selector_dir

    assert (room_selector_dir() / "data" / "train.jsonl").is_file()
    module = load_room_selector()
    import argparse

    argv = module.quickstart_argv(argparse.Namespace(run_dir="/tmp/x", runners=3, seed=1, quiet=True))
    assert argv == ["--run-dir", "/tmp/x", "--runners", "3", "--seed", "1", "--quiet"]
    args = module.build_parser().parse_args(argv)
    assert args.runners == 3 and args.rounds == 2


@pytest.mark.anyio
async def test_a_batch_that_times_out_is_scored_on_what_finished_and_the_rest_cancelled() -> None:
    from agentlightning.store import open_store
    from agentlightning_apo.evaluation import Evaluator
    from agentlightning_apo.ledger import Ledger

    store = open_store("memory://")
    try:
        evaluator = Evaluator(Ledger(store, "apo"), {}, "p", agl.TraceToMessages(), timeout=0.3)
        candidate = VersionedPromptTemplate(version="v0", prompt_template=agl.PromptTemplate(template="{x}"))

        async def finish_one() -> None:  # a "runner" that completes only the first rollout
            while not await store.query_rollouts():  # noqa: ASYNC110 - waits for the evaluator's first rollout
                await anyio.sleep(0.01)
            claimed = await store.dequeue_rollout(worker_id="w")
            assert claimed is not None
            await store.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status="succeeded")

        async with anyio.create_task_group() as tg:
            tg.start_soon(finish_one)
            results, evaluation = await evaluator.evaluate(candidate, [1, 2, 3], "val", split="val_batch", round=1)
        assert (evaluation.n_tasks, evaluation.n_finished, evaluation.score) == (3, 1, 0.0)
        assert [r.final_reward for r in results] == [None]
        statuses = sorted(r.status for r in await store.query_rollouts())
        assert statuses == ["cancelled", "cancelled", "succeeded"]
        published = await store.get_resources_by_id("v0")
        assert published is not None and published.resources == {"p": candidate.prompt_template}
    finally:
        await store.close()


def test_without_a_client_or_credentials_the_error_says_what_to_do(monkeypatch: Any) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    apo = APO(report_path=None)
    apo.set_initial_resources({"p": agl.PromptTemplate(template="{x}")})
    with pytest.raises(ValueError, match="no async_openai_client and cannot make one from the environment"):
        anyio.run(apo.run, [1], [1])
