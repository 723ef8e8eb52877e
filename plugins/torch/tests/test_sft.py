"""SFT from traces: a scripted teacher behind a real OpenAI-compatible HTTP server answers the quickstart task (and
is wrong on a quarter of the keywords); the quickstart agent runs against it, traced; SFT keeps the rollouts with
reward 1 (rejection sampling), re-encodes their messages for the tiny policy, trains on the answers only, and
validates the policy on held-out keywords through its own server."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Dict, List

import pytest
import torch
from agentlightning.runner import LitAgentRunner
from agentlightning.testing.openai_server import OpenAITestServer
from agentlightning.tracer.otel import OtelTracer
from agentlightning.trainer import Trainer
from agentlightning.types.resources import LLM
from agentlightning_sqlite.store import SqliteLightningStore
from agentlightning_torch.policy import build_policy
from agentlightning_torch.quickstart.agent import keyword_agent
from agentlightning_torch.quickstart.task import ALPHABET, CATEGORIES, category_of, make_datasets
from agentlightning_torch.sft import SFT, examples_from_spans, sft_step

pytestmark = pytest.mark.network


def teacher(request: Dict[str, Any]) -> str:
    """Right on about three keywords in four; the rest get the next category (a deterministic, wrong answer)."""
    keyword = str(request["messages"][-1]["content"])
    right = category_of(keyword)
    if zlib.crc32(keyword.encode()) % 4 == 0:
        return CATEGORIES[(CATEGORIES.index(right) + 1) % len(CATEGORIES)]
    return right


def test_sft_step_trains_only_the_response_tokens() -> None:
    policy = build_policy(alphabet=ALPHABET, d_model=32, seed=0)
    prompt = tuple(policy.encode_chat([{"role": "user", "content": "abc"}]))
    response = tuple([*policy.tokenizer.encode("A"), policy.eos_token_id])
    optimizer = torch.optim.Adam(policy.model.parameters(), lr=1e-2)
    before = policy.token_logprobs([list(prompt)], [list(response)])[0].sum().item()
    losses = [sft_step(policy, optimizer, [(prompt, response)]) for _ in range(30)]
    after = policy.token_logprobs([list(prompt)], [list(response)])[0].sum().item()
    assert after > before and losses[-1] < losses[0] / 4
    # an example without an answer has nothing to learn: no step
    state = {k: v.clone() for k, v in policy.model.state_dict().items()}
    assert sft_step(policy, optimizer, [(prompt, ())]) == 0.0
    assert all(torch.equal(v, policy.model.state_dict()[k]) for k, v in state.items())


@pytest.mark.slow  # 25-42 s on two busy cores
def test_sft_from_a_scripted_teachers_traces_reaches_090_held_out(tmp_path: Path) -> None:
    train, val = make_datasets(n_train=400, n_val=100, seed=3, same_group=True)
    reports: List[Any] = []
    with OpenAITestServer(teacher) as server:
        algorithm = SFT(
            model_config={"alphabet": ALPHABET, "d_model": 64},
            teacher={"main_llm": LLM(endpoint=server.base_url, model="teacher")},
            rounds=3,
            epochs=6,
            batch_size=32,
            learning_rate=3e-3,
            reward_threshold=1.0,
            target_val_reward=0.9,
            on_round=reports.append,
        )
        store = SqliteLightningStore(str(tmp_path / "store.db"))
        trainer = Trainer(
            algorithm=algorithm,
            store=store,
            runner=LitAgentRunner(tracer=OtelTracer(), max_concurrency=32, poll_interval=0.02),
            strategy="inprocess",
            n_runners=1,
            progress=False,
        )
        trainer.fit(keyword_agent, train, val_dataset=val)
    vals = [r for r in reports if r.kind == "val"]
    trains = [r for r in reports if r.kind == "train"]
    assert vals[0].mean_reward < 0.5  # the untrained policy
    assert vals[-1].mean_reward >= 0.9, [r.mean_reward for r in vals]
    print("SFT held-out by round:", [round(r.mean_reward, 3) for r in vals], "seconds:", round(vals[-1].elapsed, 1))
    # rejection sampling: the teacher's wrong answers (about a quarter) were not trained on
    first = trains[0]
    assert first.rollouts == len(train) and 0.6 * len(train) < first.kept < 0.9 * len(train)
    assert first.examples == first.kept
    assert algorithm.policy_version == 1 + len(trains)


def test_examples_come_from_token_ids_when_the_policy_served_the_call() -> None:
    from agentlightning.testing.store import make_span

    policy = build_policy(alphabet=ALPHABET, d_model=32, seed=0)
    span = make_span(
        "ro-1", "at-1", 1, name="raw_gen_ai_request",
        attributes={
            "llm.hosted_vllm.prompt_token_ids": [1, 5, 3], "llm.hosted_vllm.response_token_ids": [31, 2],
            "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "zzz",
            "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "B",
        },
    )  # fmt: skip
    assert examples_from_spans(policy, [span], own=True) == [((1, 5, 3), (31, 2))]
    # a teacher's call: its messages, re-encoded with the policy's tokenizer
    [(prompt, response)] = examples_from_spans(policy, [span], own=False)
    assert prompt == tuple(policy.encode_chat([{"role": "user", "content": "zzz"}]))
    assert response == (*policy.tokenizer.encode("B"), policy.eos_token_id)


def test_sft_is_registered_as_an_algorithm_and_an_export(plugin_manager: Any) -> None:
    import agentlightning_torch.hooks as hooks

    plugin_manager.register(hooks)
    assert plugin_manager.registry("algorithms").get("sft").load() is SFT
    assert plugin_manager.registry("exports").get("SFT").load() is SFT


def test_offline_fine_tuning_from_exported_chat_records() -> None:
    """What the recipe does with an ``agl export --format messages`` file: records -> examples -> fine_tune."""
    from agentlightning_torch.sft import examples_from_records, fine_tune

    policy = build_policy(alphabet=ALPHABET, d_model=32, seed=0)
    keywords = ["abc", "bcd", "ghi", "hij", "nop", "opq", "tuv", "uvw"]
    records = [
        {"messages": [{"role": "user", "content": k}, {"role": "assistant", "content": category_of(k)}], "reward": 1}
        for k in keywords
    ]
    records.append({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{}]}]})
    records.append({"not": "a chat record"})
    examples = examples_from_records(policy, records)
    assert len(examples) == len(keywords)  # the tool call and the stray record are skipped
    losses = fine_tune(policy, examples, epochs=60, batch_size=8, learning_rate=1e-2)
    assert losses[-1] < losses[0] / 10
    prompts = [list(p) for p, _ in examples]
    answers = [policy.decode(s[0].token_ids) for s in policy.generate(prompts, max_new_tokens=3, temperature=0.0)]
    assert answers == [category_of(k) for k in keywords]


def test_sft_on_the_policys_own_samples_trains_on_their_token_ids(tmp_path: Path) -> None:
    """Without a teacher the rollouts are the policy's own, served by its server; with a threshold of 0 every
    rollout is kept, and each gives one example read from the token ids the server recorded."""
    train, _ = make_datasets(n_train=12, n_val=4, seed=2, same_group=True)
    reports: List[Any] = []
    algorithm = SFT(model_config={"alphabet": ALPHABET, "d_model": 32}, rounds=2, epochs=1, reward_threshold=0.0,
                    samples_per_task=2, on_round=reports.append)  # fmt: skip
    store = SqliteLightningStore(str(tmp_path / "store.db"))
    Trainer(
        algorithm=algorithm, store=store, runner=LitAgentRunner(tracer=OtelTracer(instrument=False)),
        strategy="inprocess", progress=False,
    ).fit(keyword_agent, train)  # fmt: skip
    assert [(r.kind, r.rollouts, r.kept) for r in reports] == [("train", 24, 24), ("train", 24, 24)]
    assert [r.examples for r in reports] == [24, 48]  # keep_previous: the first round's examples stay
    assert algorithm.policy_version == 3
