"""Trainer.fit with APO end to end: two runner processes, a SQLite store, and both the agent's and the optimiser's
LLM served over HTTP by the local OpenAI-compatible test server and reached with the real ``openai`` client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List

import agentlightning as agl
import anyio
import apo_scripted as world
import pytest
from agentlightning.testing.openai_server import OpenAITestServer
from apo_scripted import GOOD_PROMPT, SEED_PROMPT, World, expected_score, rs

openai = pytest.importorskip("openai")


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(World()) as srv:
        yield srv


def datasets() -> tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    train = rs.load_tasks("train")[:4]
    val = world.hard_val_tasks(6)  # so that the shared validation batch, whichever it is, tells the prompts apart
    return train, val


def make_trainer(srv: OpenAITestServer, store: str, algorithm: Any, n_runners: int) -> agl.Trainer:
    return agl.Trainer(
        algorithm=algorithm,
        store=store,
        n_runners=n_runners,
        runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.05},
        adapter=agl.TraceToMessages(),
        initial_resources={
            "prompt_template": agl.PromptTemplate(template=SEED_PROMPT, engine="f-string"),
            "llm": agl.LLM(endpoint=srv.base_url, model="agent-model"),
        },
        progress=False,
    )


def make_apo(srv: OpenAITestServer, report: Path, **overrides: Any) -> Any:
    params: Dict[str, Any] = dict(
        gradient_model="critic-model", apply_edit_model="editor-model", gradient_batch_size=2, val_batch_size=3,
        beam_width=2, branch_factor=1, beam_rounds=1, rollout_batch_timeout=60.0, report_path=str(report), seed=0,
    )  # fmt: skip
    params.update(overrides)
    return agl.APO(openai.AsyncOpenAI(base_url=srv.base_url, api_key="test", max_retries=0), **params)


def test_fit_with_two_runner_processes_and_sqlite_finds_the_better_prompt(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    train, val = datasets()
    seed_expected = expected_score(val, SEED_PROMPT)
    assert seed_expected < 1.0 and expected_score(val, GOOD_PROMPT) == 1.0  # the script has room to improve
    store_url = f"sqlite:///{tmp_path / 'apo.db'}"
    algorithm = make_apo(server, tmp_path / "report")
    trainer = make_trainer(server, store_url, algorithm, n_runners=2)

    trainer.fit(rs.room_selector, train, val_dataset=val)

    state = algorithm.state
    assert state.status == "finished" and state.rounds_done == 1
    seed_record = state.candidates["v0"]
    assert seed_record.full_val_scores() == [pytest.approx(seed_expected)]
    assert algorithm.get_best_prompt().template == GOOD_PROMPT
    assert state.best_version != "v0"
    assert algorithm.get_best_score() == pytest.approx(1.0)
    # every child needed a retry: the first edit dropped {needs} and was refused, never published
    children = [c for c in state.candidates.values() if c.parent is not None]
    assert len(children) == 2
    for child in children:
        assert [r["problems"] for r in child.rejected_edits] == [["it drops the placeholder(s) {needs}"]]
    assert world.DROPPED_PROMPT not in json.dumps([c.template for c in state.candidates.values()])

    async def check_store() -> None:
        store = agl.open_store(store_url)
        try:
            for version in state.candidates:
                update = await store.get_resources_by_id(version)
                assert update is not None
                template = update.resources["prompt_template"]
                assert template.placeholders() == {"date", "time", "duration_min", "attendees", "needs"}
                assert update.resources["llm"].model == "agent-model"  # the other resources travel along
            latest = await store.get_latest_resources()
            assert latest is not None and latest.resources_id == "apo-best"
            assert latest.resources["prompt_template"].template == GOOD_PROMPT
            rollouts = await store.query_rollouts()
            assert {r.status for r in rollouts} == {"succeeded"}
            # initial val 6 + 2 branches x 2 train + 3 candidates x 3 val-batch + leader 6
            assert len(rollouts) == 6 + 4 + 9 + 6
            saved = await algorithm_state(store)
            assert saved["best_version"] == state.best_version and saved["status"] == "finished"
        finally:
            await store.close()

    anyio.run(check_store)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["best_score"] == pytest.approx(1.0)
    assert report["summary"]["seed_score"] == pytest.approx(seed_expected)
    markdown = (tmp_path / "report.md").read_text()
    assert GOOD_PROMPT in markdown and "Rejected edit: it drops the placeholder(s) {needs}" in markdown


async def algorithm_state(store: Any) -> Dict[str, Any]:
    update = await store.get_resources_by_id("apo-state")
    return json.loads(update.resources["apo_state"].template)
