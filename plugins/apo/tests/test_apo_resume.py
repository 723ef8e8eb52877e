"""An interrupted APO run resumes from the SQLite store: done work is not redone, nothing stored is overwritten,
rollouts the dead process left queued are cancelled, and the run still ends after ``beam_rounds``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator

import agentlightning as agl
import anyio
import apo_scripted
import pytest
from agentlightning.testing.openai_server import OpenAITestServer
from agentlightning_apo import APO
from apo_scripted import GOOD_PROMPT, SEED_PROMPT, World, rs

openai = pytest.importorskip("openai")


class Crash(RuntimeError):
    pass


class CrashingAPO(APO):
    """Dies at the start of round ``crash_in``, as a killed process would (after its last checkpoint)."""

    crash_in = 2

    async def _round(self, state: Any, *args: Any) -> None:
        if state.rounds_done + 1 == self.crash_in:
            raise Crash("simulated interruption")
        await super()._round(state, *args)


@pytest.fixture
def world() -> Iterator[tuple[World, OpenAITestServer]]:
    handler = World()
    with OpenAITestServer(handler) as srv:
        yield handler, srv


def fit(srv: OpenAITestServer, store_url: str, algorithm: APO, seed_prompt: str = SEED_PROMPT) -> None:
    trainer = agl.Trainer(
        algorithm=algorithm,
        store=store_url,
        n_runners=1,
        strategy="inprocess",
        runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.05},
        initial_resources={
            "prompt_template": agl.PromptTemplate(template=seed_prompt),
            "llm": agl.LLM(endpoint=srv.base_url, model="agent-model"),
        },
        progress=False,
    )
    trainer.fit(rs.room_selector, rs.load_tasks("train")[:2], val_dataset=hard_val_tasks())


def hard_val_tasks() -> list:
    return apo_scripted.hard_val_tasks(3)


def apo(cls: type, srv: OpenAITestServer, report: Path, **kw: Any) -> Any:
    client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="test", max_retries=0)
    params: Dict[str, Any] = dict(
        gradient_model="critic-model", apply_edit_model="editor-model", gradient_batch_size=1, val_batch_size=2,
        beam_width=1, branch_factor=1, beam_rounds=2, rollout_batch_timeout=30.0, report_path=str(report), seed=3,
    )  # fmt: skip
    params.update(kw)
    return cls(client, **params)


async def stored(store_url: str, what: str, *args: Any) -> Any:
    store = agl.open_store(store_url)
    try:
        return await getattr(store, what)(*args)
    finally:
        await store.close()


def test_an_interrupted_run_resumes_where_its_checkpoint_left_it(
    world: tuple[World, OpenAITestServer], tmp_path: Path
) -> None:
    handler, srv = world
    store_url = f"sqlite:///{tmp_path / 'apo.db'}"
    first = apo(CrashingAPO, srv, tmp_path / "report")
    with pytest.raises(Crash):
        fit(srv, store_url, first)
    assert first.state.rounds_done == 1 and first.state.status == "running"
    versions_before = set(first.state.candidates)
    assert versions_before == {"v0", "v1"}
    critic_calls = handler.count("critic-model")
    assert critic_calls == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["state"]["rounds_done"] == 1  # the report was written at the checkpoint too
    v1_before = anyio.run(stored, store_url, "get_resources_by_id", "v1")

    # what the dead process did after its checkpoint: a candidate published, a rollout enqueued and never taken
    v5 = {"prompt_template": agl.PromptTemplate(template="{date} {time} {duration_min} {attendees} {needs}")}
    anyio.run(stored, store_url, "update_resources", "v5", v5)
    stale = anyio.run(
        lambda: stored(store_url, "enqueue_rollout", {"id": "x"}, "val", "v5", None, {"apo": {"run": "apo"}})
    )

    second = apo(APO, srv, tmp_path / "report")
    fit(srv, store_url, second)
    state = second.state
    assert state.status == "finished" and state.rounds_done == 2
    assert [r.round for r in state.rounds] == [1, 2]
    assert handler.count("critic-model") == critic_calls + 1  # only round 2 ran
    assert len([e for e in state.candidates["v0"].evaluations if e.round == 0]) == 1  # initial validation not redone
    assert set(state.candidates) == versions_before | {"v6"}  # numbering skips what is stored
    assert state.candidates["v6"].round == 2 and state.candidates["v6"].parent == "v1"
    assert anyio.run(stored, store_url, "get_resources_by_id", "v5").resources == v5
    assert anyio.run(stored, store_url, "get_resources_by_id", "v1").resources == v1_before.resources
    assert anyio.run(stored, store_url, "get_rollout_by_id", stale.rollout_id).status == "cancelled"
    assert second.get_best_prompt().template == GOOD_PROMPT
    latest = anyio.run(stored, store_url, "get_latest_resources")
    assert latest.resources_id == "apo-best" and latest.resources["prompt_template"].template == GOOD_PROMPT


def test_a_finished_run_is_not_repeated_and_more_rounds_extend_it(
    world: tuple[World, OpenAITestServer], tmp_path: Path
) -> None:
    handler, srv = world
    store_url = f"sqlite:///{tmp_path / 'apo.db'}"
    fit(srv, store_url, apo(APO, srv, tmp_path / "r", beam_rounds=1))
    rollouts = len(anyio.run(stored, store_url, "query_rollouts"))
    calls = dict(handler.calls)

    again = apo(APO, srv, tmp_path / "r", beam_rounds=1)
    fit(srv, store_url, again)
    assert handler.calls == calls and len(anyio.run(stored, store_url, "query_rollouts")) == rollouts
    assert again.state.status == "finished" and again.get_best_prompt().template == GOOD_PROMPT

    more = apo(APO, srv, tmp_path / "r", beam_rounds=2)
    fit(srv, store_url, more)
    assert more.state.rounds_done == 2 and handler.count("critic-model") == calls["critic-model"] + 1


def test_another_seed_prompt_in_the_same_run_name_is_refused(
    world: tuple[World, OpenAITestServer], tmp_path: Path
) -> None:
    _, srv = world
    store_url = f"sqlite:///{tmp_path / 'apo.db'}"
    fit(srv, store_url, apo(APO, srv, tmp_path / "r", beam_rounds=0))
    other_seed = SEED_PROMPT + " Be quick."
    with pytest.raises(ValueError, match="another seed prompt; pass another run_name="):
        fit(srv, store_url, apo(APO, srv, tmp_path / "r", beam_rounds=0), seed_prompt=other_seed)
    second = apo(APO, srv, tmp_path / "r2", beam_rounds=0, run_name="second")
    fit(srv, store_url, second, seed_prompt=other_seed)
    assert list(second.state.candidates) == ["second-v0"]
    assert (
        anyio.run(stored, store_url, "get_resources_by_id", "v0").resources["prompt_template"].template == SEED_PROMPT
    )


def test_a_run_under_trio(world: tuple[World, OpenAITestServer], tmp_path: Path) -> None:
    """The algorithm only uses anyio: the same run works on a trio event loop."""
    _, srv = world
    algorithm = apo(APO, srv, tmp_path / "r", beam_rounds=1)
    trainer = agl.Trainer(
        algorithm=algorithm,
        store=f"sqlite:///{tmp_path / 'apo.db'}",
        strategy={"type": "inprocess", "n_runners": 1, "backend": "trio"},
        runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.05},
        initial_resources={
            "prompt_template": agl.PromptTemplate(template=SEED_PROMPT),
            "llm": agl.LLM(endpoint=srv.base_url, model="agent-model"),
        },
        progress=False,
    )
    trainer.fit(rs.room_selector, rs.load_tasks("train")[:2], val_dataset=hard_val_tasks())
    assert algorithm.state.status == "finished"
    assert algorithm.get_best_prompt().template == GOOD_PROMPT


def test_the_same_apo_object_and_client_serve_a_second_fit(
    world: tuple[World, OpenAITestServer], tmp_path: Path
) -> None:
    """Each fit runs a new event loop; the optimiser's client must still work in the second one."""
    handler, srv = world
    store_url = f"sqlite:///{tmp_path / 'apo.db'}"
    algorithm = apo(APO, srv, tmp_path / "r", beam_rounds=1)
    fit(srv, store_url, algorithm)
    algorithm.beam_rounds = 2
    fit(srv, store_url, algorithm)
    assert algorithm.state.rounds_done == 2 and algorithm.state.discarded_edits == []
    assert len(algorithm.state.candidates) == 3 and handler.count("editor-model") == 3


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("no-such-model", r"optimiser endpoint refused the call \(NotFoundError"),
        ("broken-model", r"APO round 1: every optimiser call failed \(last: InternalServerError"),
    ],
)
def test_an_optimiser_that_cannot_answer_stops_the_run_with_a_clear_error(
    world: tuple[World, OpenAITestServer], tmp_path: Path, model: str, message: str
) -> None:
    _, srv = world
    store_url = f"sqlite:///{tmp_path / 'apo.db'}"
    algorithm = apo(APO, srv, tmp_path / "r", beam_rounds=1, gradient_model=model)
    with pytest.raises(RuntimeError, match=message):
        fit(srv, store_url, algorithm)
    assert algorithm.state.initial_validation_done and algorithm.state.rounds_done == 0  # checkpoint kept
