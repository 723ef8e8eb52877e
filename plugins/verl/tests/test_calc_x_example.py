"""contrib/examples/calc_x on CPU: the agent's tool loop against a local OpenAI-compatible server, and one VERL
step of the example's config with the fake verl backend."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Dict, List

import agentlightning as agl
import anyio
import pytest
from agentlightning.testing.openai_server import OpenAITestServer, Reply, ToolCall
from agentlightning.trainer import Trainer
from agentlightning_verl import VERL
from fake_verl import FakeVerlTrainer

EXAMPLE = Path(__file__).resolve().parents[3] / "contrib" / "examples" / "calc_x"
sys.path.insert(0, str(EXAMPLE))

import calc_agent as example  # noqa: E402
import train_calc_x  # noqa: E402


def tool_handler(request: Dict[str, Any]) -> Any:
    """Asks the calculator for the question's expression, then answers with what the tool said."""
    messages = request["messages"]
    if messages[-1]["role"] == "tool":
        return f"The calculator says {messages[-1]['content']}.\nANSWER: {messages[-1]['content']}"
    expression = re.search(r"What is (.*)\?", messages[-1]["content"]).group(1)  # type: ignore[union-attr]
    return Reply(tool_calls=[ToolCall("calculator", {"expression": expression})])


def test_calculator_is_safe_and_exact() -> None:
    assert example.calculate("(74 + 29) * 4") == 412.0
    assert example.calculate("-3 + 2 ** 3 / 4") == -1.0
    for bad in ("__import__('os')", "2 ** 100", "1 / 0", "x + 1", "(1"):
        with pytest.raises(ValueError):
            example.calculate(bad)
    assert example._tool_result('{"expression": "6 * 7"}') == "42"
    assert example._tool_result("not json").startswith("error:")


def test_final_answer_and_score() -> None:
    assert example.final_answer("ANSWER: 3\nno wait\nANSWER: -4.5") == -4.5
    assert example.final_answer("the answer is 12") is None
    assert example.score("ANSWER: 412", 412) == 1.0 and example.score("ANSWER: 411", 412) == 0.0


def test_dataset_answers_match_the_calculator() -> None:
    rows = train_calc_x.load_jsonl(EXAMPLE / "data" / "train.jsonl") + train_calc_x.load_jsonl(
        EXAMPLE / "data" / "test.jsonl"
    )
    assert len(rows) == 320 and len({r["id"] for r in rows}) == 320
    for row in rows:
        match = re.fullmatch(r"What is (.*)\?", row["question"])
        if match:
            assert example.calculate(match.group(1)) == row["answer"]


def test_agent_uses_the_tool_and_is_rewarded() -> None:
    with OpenAITestServer(tool_handler) as server:
        llm = agl.LLM(endpoint=server.base_url, model="m", sampling_parameters={"temperature": 0.0})
        task = {"question": "What is (74 + 29) * 4?", "answer": 412}
        reward = anyio.run(example.calc_agent.rollout_async, task, {"main_llm": llm}, None)
        assert reward == 1.0
        first, second = [r.body for r in server.requests]
        assert first["tools"][0]["function"]["name"] == "calculator" and first["return_token_ids"] is True
        assert second["messages"][-1] == {"role": "tool", "tool_call_id": second["messages"][-2]["tool_calls"][0]["id"],
                                          "content": "412"}  # fmt: skip


def test_one_verl_step_of_the_example_config(tmp_path: Any) -> None:
    config = train_calc_x.build_config("/models/Qwen2.5-0.5B-Instruct", checkpoint_dir=str(tmp_path / "ckpt"))
    overrides = ["data.train_batch_size=2", "actor_rollout_ref.rollout.n=2", "trainer.total_training_steps=1",
                 "trainer.val_before_train=false", "trainer.test_freq=-1", "agentlightning.use_llm_proxy=false",
                 "agentlightning.poll_interval=0.05"]  # fmt: skip
    FakeVerlTrainer.instances.clear()
    algorithm = VERL(config, overrides=overrides, trainer_cls=lambda c: FakeVerlTrainer(c, tool_handler))
    questions = [
        r for r in train_calc_x.load_jsonl(EXAMPLE / "data" / "train.jsonl") if r["question"].startswith("What")
    ]
    trainer = Trainer(algorithm=algorithm, n_runners=2, strategy="inprocess", progress=False,
                      runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.02})  # fmt: skip
    trainer.fit(example.calc_agent, train_dataset=questions[:2])
    (backend,) = FakeVerlTrainer.instances
    (batch,) = backend.batches
    train_entries: List[Dict[str, Any]] = [h for h in algorithm.history if h["kind"] == "train"]
    assert train_entries[0]["training/reward"] == 1.0 and train_entries[0]["training/n_turns"] == 8
    # two model calls per episode; with this server's rendering the tool-call turn does not re-render exactly
    # (the assistant's tool_calls are serialised differently), so each call is its own row
    assert len(batch) == train_entries[0]["training/n_rows"]
    assert batch.turn_indices == [[0], [1]] * 4
    assert len(set(batch.group_ids)) == 2 and all(batch.rewards)
