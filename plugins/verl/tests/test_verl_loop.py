"""The VERL loop on CPU: a real memory store, real runners and tracer, a real OpenAI-compatible server standing in
for vLLM; only verl's GPU side is the fake backend of ``fake_verl``."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Dict, List

import agentlightning as agl
import anyio
import pytest
from agentlightning.testing.openai_server import fake_tokenize
from agentlightning.trainer import Trainer
from agentlightning_verl import VERL
from fake_verl import FakeVerlTrainer, arithmetic_handler

DATA = [{"question": f"What is {a} + {b}?", "answer": a + b} for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10)]]
SYSTEM = "Answer the arithmetic question."


async def _ask(llm: agl.LLM, messages: List[Dict[str, str]]) -> str:
    import openai

    async with openai.AsyncOpenAI(base_url=llm.endpoint, api_key="test", max_retries=0) as client:
        reply = await client.chat.completions.create(
            model=llm.model,
            messages=messages,
            temperature=llm.sampling_parameters.get("temperature"),  # type: ignore
            extra_body={"return_token_ids": True},
        )
    return reply.choices[0].message.content or ""


def _score(text: str, answer: int) -> float:
    found = re.findall(r"-?\d+", text)
    return 1.0 if found and int(found[-1]) == answer else 0.0


@agl.rollout
async def calc(task: Dict[str, Any], llm: agl.LLM) -> float:
    text = await _ask(llm, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task["question"]}])
    return _score(text, task["answer"])


@agl.rollout
async def calc_two_turns(task: Dict[str, Any], llm: agl.LLM) -> float:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task["question"]}]
    first = await _ask(llm, messages)
    messages += [{"role": "assistant", "content": first}, {"role": "user", "content": "Check it once more."}]
    return _score(await _ask(llm, messages), task["answer"])


def _config(tmp_path: Any, **sections: Any) -> Dict[str, Any]:
    config: Dict[str, Any] = {
        "actor_rollout_ref": {"model": {"path": "/models/Qwen2.5-0.5B-Instruct"}, "rollout": {"n": 3}},
        "data": {"train_batch_size": 2},
        "trainer": {"total_epochs": 1, "default_local_dir": str(tmp_path / "ckpt"), "test_freq": 1},
        "agentlightning": {"use_llm_proxy": False, "poll_interval": 0.05, "rollout_timeout_seconds": 60.0,
                           "wait_grace_seconds": 5.0},
    }  # fmt: skip
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


def _fit(algorithm: VERL, agent: Any, train: Any, val: Any = None) -> Trainer:
    trainer = Trainer(
        algorithm=algorithm, n_runners=3, strategy="inprocess", progress=False,
        runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.02},
    )  # fmt: skip
    trainer.fit(agent, train_dataset=train, val_dataset=val)
    return trainer


def _all_rollouts(trainer: Trainer) -> List[Any]:
    return list(anyio.run(trainer.store.query_rollouts))


@pytest.fixture(autouse=True)
def _fresh_instances() -> Any:
    FakeVerlTrainer.instances.clear()
    yield
    for backend in FakeVerlTrainer.instances:
        backend.server.stop()


def test_a_run_enqueues_groups_trains_on_their_token_ids_and_publishes_resources(tmp_path: Any) -> None:
    steps: List[Dict[str, Any]] = []
    algorithm = VERL(_config(tmp_path), trainer_cls=FakeVerlTrainer, on_step=steps.append)
    trainer = _fit(algorithm, calc, DATA[:4], DATA[4:])
    backend = FakeVerlTrainer.instances[0]
    assert backend.config["trainer"]["total_training_steps"] == 2  # resolved for verl's LR schedules
    assert algorithm.config["trainer"]["total_training_steps"] is None  # the user's config is left as given

    # lifecycle, in verl's order: servers up, resume check, validate, then per step wake -> rollouts -> sleep -> train
    assert backend.events == [
        "start", "load_checkpoint",
        "wake_up", "sleep",  # validation before training
        "wake_up", "sleep", "train_step:1", "wake_up", "sleep",  # validation after step 1 (test_freq=1)
        "wake_up", "sleep", "train_step:2", "wake_up", "sleep",
        "shutdown",
    ]  # fmt: skip
    assert [(s["kind"], s["step"]) for s in steps] == [("val", 0), ("train", 1), ("val", 1), ("train", 2), ("val", 2)]

    rollouts = _all_rollouts(trainer)
    train = [r for r in rollouts if r.mode == "train"]
    assert len(train) == 2 * 2 * 3 and all(r.status == "succeeded" for r in rollouts)
    groups = Counter(r.metadata["data_id"] for r in train)
    assert len(groups) == 4 and set(groups.values()) == {3}  # n rollouts per sample, one data id each
    for data_id in groups:  # a group's copies share the sample
        inputs = {r.input["question"] for r in train if r.metadata["data_id"] == data_id}
        assert len(inputs) == 1
    assert {r.input["question"] for r in train} == {d["question"] for d in DATA[:4]}  # one epoch, each sample once
    assert all(r.metadata["is_train"] for r in train)

    # the batches: one row per rollout (one LLM call each), the token ids the server produced, grouped by data id
    by_id = {r.rollout_id: r for r in rollouts}
    assert [len(b) for b in backend.batches] == [6, 6]
    for batch in backend.batches:
        assert Counter(batch.group_ids) == Counter({g: 3 for g in set(batch.group_ids)})
        for i, rollout_id in enumerate(batch.rollout_ids):
            rollout = by_id[rollout_id]
            assert batch.group_ids[i] == rollout.metadata["data_id"]
            prompt = fake_tokenize(f"system: {SYSTEM}\nuser: {rollout.input['question']}\nassistant: ")
            attended = [t for t, m in zip(batch.input_ids[i], batch.attention_mask[i]) if m]
            assert attended[: len(prompt)] == prompt
            answer = re.findall(r"-?\d+", bytes(attended[len(prompt) :]).decode())[-1]
            reward = 1.0 if int(answer) == rollout.input["answer"] else 0.0
            assert batch.rewards[i] == reward and sum(batch.token_level_scores[i]) == reward
    # rollout-level GRPO advantages: centred per group
    for batch, advantages in zip(backend.batches, backend.advantages):
        assert advantages is not None
        for group in set(batch.group_ids):
            assert abs(sum(a for a, g in zip(advantages, batch.group_ids) if g == group)) < 1e-6

    # resources: the LLM the runners used is the rollout server; every step publishes a new version
    async def resources() -> Dict[str, Any]:
        out = {}
        for rollout in rollouts:
            update = await trainer.store.get_resources_by_id(rollout.resources_id)
            out[rollout.rollout_id] = update.resources["main_llm"]
        return out

    llms = anyio.run(resources)
    assert {llm.endpoint for llm in llms.values()} == {f"http://{backend.address}/v1"}
    assert {llm.model for llm in llms.values()} == {"Qwen2.5-0.5B-Instruct"}
    step_versions = [{r.resources_id for r in train if r.metadata["step"] == s} for s in (1, 2)]
    assert all(len(v) == 1 for v in step_versions) and step_versions[0] != step_versions[1]
    assert {llm.sampling_parameters["temperature"] for rid, llm in llms.items() if by_id[rid].mode == "val"} == {0.0}
    assert steps[1]["training/n_rows"] == 6 and steps[0]["val/n_rollouts"] == 1


def test_trajectory_mode_merges_turns_that_continue_exactly(tmp_path: Any) -> None:
    config = _config(tmp_path, agentlightning={"use_llm_proxy": False, "poll_interval": 0.05,
                                               "trace_aggregator": {"level": "trajectory"}},
                     trainer={"test_freq": -1, "val_before_train": False, "total_training_steps": 1,
                              "default_local_dir": str(tmp_path / "ckpt")})  # fmt: skip
    algorithm = VERL(config, trainer_cls=FakeVerlTrainer)
    _fit(algorithm, calc_two_turns, DATA[:2])
    backend = FakeVerlTrainer.instances[0]
    (batch,) = backend.batches
    assert len(batch) == 6  # two LLM calls per rollout, merged into one row each
    assert all(turns == [0, 1] for turns in batch.turn_indices)
    for i in range(len(batch)):
        mask = batch.response_mask[i]
        real = len([a for a in batch.attention_mask[i] if a]) - len([t for t in batch.prompts[i] if t])
        context = bytes(t for t, m in zip(batch.responses[i][:real], mask) if m == 0).decode()
        assert "\nuser: Check it once more.\nassistant: " in context  # the injected turn is masked out


def test_transition_mode_keeps_one_row_per_call(tmp_path: Any) -> None:
    config = _config(tmp_path, trainer={"test_freq": -1, "val_before_train": False, "total_training_steps": 1,
                                        "default_local_dir": str(tmp_path / "ckpt")})  # fmt: skip
    _fit(VERL(config, trainer_cls=FakeVerlTrainer), calc_two_turns, DATA[:2])
    (batch,) = FakeVerlTrainer.instances[0].batches
    assert len(batch) == 12 and sorted(t[0] for t in batch.turn_indices) == [0] * 6 + [1] * 6
    for i, response in enumerate(batch.responses):
        length = sum(batch.attention_mask[i]) - sum(1 for t in batch.prompts[i] if t != 0)
        assert batch.response_mask[i][:length] == [1] * length  # every response token is the model's


def test_checkpoints_and_resume_through_the_backend(tmp_path: Any) -> None:
    ckpt = str(tmp_path / "ckpt")
    config = _config(tmp_path, trainer={"save_freq": 1, "test_freq": -1, "total_training_steps": 1,
                                        "default_local_dir": ckpt})  # fmt: skip
    _fit(VERL(config, trainer_cls=FakeVerlTrainer), calc, DATA[:4], DATA[4:])
    first = FakeVerlTrainer.instances[0]
    assert first.steps == [1] and "save_checkpoint:1" in first.events

    config["trainer"]["total_training_steps"] = None  # the full epoch: 2 steps
    second_algorithm = VERL(config, trainer_cls=FakeVerlTrainer)
    trainer = _fit(second_algorithm, calc, DATA[:4], DATA[4:])
    second = FakeVerlTrainer.instances[1]
    assert second.steps == [2]  # step 1 came from the checkpoint
    assert "wake_up" not in second.events[: second.events.index("train_step:2") - 2]  # no validation on resume
    assert second.events[-2:] == ["save_checkpoint:2", "shutdown"]
    # the resumed step trains on the batch the first run would have trained on next
    first_step_inputs = {r.input["question"] for r in _all_rollouts(trainer) if r.metadata.get("step") == 2}
    assert len(first_step_inputs) == 2 and second_algorithm.global_step == 2


def test_overlong_rows_are_truncated_and_flagged(tmp_path: Any) -> None:
    config = _config(tmp_path, data={"train_batch_size": 2, "max_prompt_length": 8, "max_response_length": 5},
                     trainer={"test_freq": -1, "val_before_train": False, "total_training_steps": 1,
                              "default_local_dir": str(tmp_path / "ckpt")})  # fmt: skip
    steps: List[Dict[str, Any]] = []
    _fit(VERL(config, trainer_cls=FakeVerlTrainer, on_step=steps.append), calc, DATA[:2])
    (batch,) = FakeVerlTrainer.instances[0].batches
    assert all(len(p) == 8 and len(r) == 5 for p, r in zip(batch.prompts, batch.responses))
    assert all(batch.drop)  # prompts over 8 tokens: dropped from the update (kept for statistics)
    assert steps[0]["training/n_prompt_truncated"] == 6 and steps[0]["training/n_response_truncated"] == 6


def test_failed_rollouts_count_with_the_fill_reward(tmp_path: Any) -> None:
    @agl.rollout
    async def flaky(task: Dict[str, Any], llm: agl.LLM) -> float:
        if task["answer"] == 3:
            raise RuntimeError("agent crashed")
        return 1.0  # no LLM call: no token ids

    config = _config(tmp_path, agentlightning={"use_llm_proxy": False, "poll_interval": 0.05,
                                               "reward_fillna_value": -1.0},
                     trainer={"test_freq": -1, "val_before_train": False, "total_training_steps": 1,
                              "default_local_dir": str(tmp_path / "ckpt")})  # fmt: skip
    steps: List[Dict[str, Any]] = []
    _fit(VERL(config, trainer_cls=FakeVerlTrainer, on_step=steps.append), flaky, DATA[:2])
    assert steps[0]["training/n_rollouts"] == 6
    assert steps[0]["training/n_rows"] == 0  # no LLM calls: no token ids, nothing to train on
    assert FakeVerlTrainer.instances[0].batches == []


def test_rollouts_wait_for_the_servers_to_wake(tmp_path: Any) -> None:
    handler_calls: List[str] = []
    inner = arithmetic_handler(correct_rate=1.0)

    def factory(config: Dict[str, Any]) -> FakeVerlTrainer:
        def handler(request: Dict[str, Any]) -> str:
            handler_calls.append("call")
            return inner(request)

        return FakeVerlTrainer(config, handler)

    config = _config(tmp_path, trainer={"test_freq": -1, "val_before_train": False, "total_training_steps": 1,
                                        "default_local_dir": str(tmp_path / "ckpt")})  # fmt: skip
    steps: List[Dict[str, Any]] = []
    _fit(VERL(config, trainer_cls=factory, on_step=steps.append), calc, DATA[:2])
    assert len(handler_calls) == 6 and steps[0]["training/reward"] == 1.0


@pytest.mark.slow
def test_rollout_servers_are_published_through_the_llm_proxy(tmp_path: Any) -> None:
    pytest.importorskip("agentlightning_litellm")
    from agentlightning_litellm import LLMProxy

    proxy = LLMProxy(launch_mode="thread")
    config = _config(tmp_path, agentlightning={"use_llm_proxy": True, "poll_interval": 0.05},
                     trainer={"test_freq": -1, "val_before_train": False, "total_training_steps": 1,
                              "default_local_dir": str(tmp_path / "ckpt")})  # fmt: skip
    algorithm = VERL(config, trainer_cls=FakeVerlTrainer)
    trainer = Trainer(
        algorithm=algorithm, llm_proxy=proxy, n_runners=2, strategy="inprocess", progress=False,
        runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.02},
    )  # fmt: skip
    trainer.fit(calc, train_dataset=DATA[:2])
    backend = FakeVerlTrainer.instances[0]
    assert not proxy.is_running()  # started for the run, stopped after
    assert proxy.model_list == [{"model_name": "Qwen2.5-0.5B-Instruct", "litellm_params": {
        "model": "hosted_vllm/Qwen2.5-0.5B-Instruct", "api_base": f"http://{backend.address}/v1"}}]  # fmt: skip
    rollouts = _all_rollouts(trainer)

    async def published() -> Any:
        return (await trainer.store.get_resources_by_id(rollouts[0].resources_id)).resources["main_llm"]

    llm = anyio.run(published)
    assert type(llm).__name__ == "ProxyLLM" and llm.endpoint.startswith("http://127.0.0.1:")
    assert str(backend.address) not in llm.endpoint
    (batch,) = backend.batches
    assert len(batch) == 6 and len(set(batch.group_ids)) == 2
    assert all(any(row) for row in batch.response_mask)
