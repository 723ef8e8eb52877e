"""Config composition: our defaults <- user <- overrides, with errors naming the key."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from agentlightning_verl.config import (
    DEFAULTS,
    ConfigError,
    compose_config,
    get_key,
    parse_override,
    rows_config_kwargs,
)
from hypothesis import given
from hypothesis import strategies as st

MODEL = {"actor_rollout_ref": {"model": {"path": "Qwen/Qwen2.5-0.5B-Instruct"}}}

# a slice of verl's own ppo_trainer defaults, the shape the GPU backend passes as `base`
VERL_BASE: Dict[str, Any] = {
    "data": {"train_batch_size": 1024, "max_prompt_length": 512, "max_response_length": 512, "val_batch_size": None,
             "filter_overlong_prompts": False, "shuffle": True},
    "actor_rollout_ref": {"model": {"path": "~/models/deepseek-llm-7b-chat", "lora_rank": 0},
                          "actor": {"ppo_mini_batch_size": 256},
                          "rollout": {"name": "vllm", "mode": "async", "n": 1, "temperature": 1.0,
                                      "val_kwargs": {"temperature": 0, "n": 1}}},
    "algorithm": {"adv_estimator": "gae", "norm_adv_by_std_in_grpo": True},
    "trainer": {"total_epochs": 30, "total_training_steps": None, "save_freq": -1, "test_freq": -1,
                "val_before_train": True, "resume_mode": "auto", "default_local_dir": "checkpoints/x",
                "use_v1": True, "logger": ["console"]},
}  # fmt: skip


def test_precedence_base_then_ours_then_user_then_overrides() -> None:
    user = {**MODEL, "data": {"train_batch_size": 16}, "algorithm": {"adv_estimator": "rloo"}}
    config = compose_config(user, ["data.train_batch_size=32", "trainer.logger=[\"console\", \"wandb\"]"],
                            base=VERL_BASE)  # fmt: skip
    assert get_key(config, "data.train_batch_size") == 32  # override beats user beats ours beats verl's
    assert get_key(config, "algorithm.adv_estimator") == "rloo"  # user beats ours ("grpo")
    assert get_key(config, "actor_rollout_ref.rollout.n") == 4  # ours beats verl's 1
    assert get_key(config, "trainer.use_v1") is False
    assert get_key(config, "actor_rollout_ref.actor.ppo_mini_batch_size") == 256  # verl's, untouched
    assert get_key(config, "trainer.logger") == ["console", "wandb"]
    assert get_key(config, "agentlightning.trace_aggregator.level") == "transition"


def test_inputs_are_not_mutated() -> None:
    user = {**MODEL, "data": {"train_batch_size": 2}}
    before = repr(user), repr(DEFAULTS), repr(VERL_BASE)
    config = compose_config(user, base=VERL_BASE)
    config["data"]["train_batch_size"] = 99
    config["agentlightning"]["trace_aggregator"]["level"] = "x"
    assert (repr(user), repr(DEFAULTS), repr(VERL_BASE)) == before


def test_mapping_overrides_and_new_keys_without_base() -> None:
    config = compose_config(MODEL, {"critic.optim.lr": 1e-5, "agentlightning.trace_aggregator.level": "trajectory"})
    assert config["critic"] == {"optim": {"lr": 1e-5}}  # unknown to us, passed on to verl
    assert rows_config_kwargs(config) == {
        "level": "trajectory", "max_prompt_length": 2048, "max_response_length": 8192,
        "overlong_prompt": "drop", "overlong_response": "truncate", "reward_fill": 0.0,
    }  # fmt: skip
    assert rows_config_kwargs(compose_config(MODEL))["max_prompt_length"] == 4096


@pytest.mark.parametrize(
    "user, overrides, key",
    [
        ({}, None, "actor_rollout_ref.model.path"),
        (MODEL, ["data.train_batch_size=0"], "data.train_batch_size"),
        (MODEL, ["actor_rollout_ref.rollout.n=two"], "actor_rollout_ref.rollout.n"),
        (MODEL, ["actor_rollout_ref.rollout.mode=sync"], "actor_rollout_ref.rollout.mode"),
        (MODEL, ["agentlightning.trace_aggregator.level=turn"], "agentlightning.trace_aggregator.level"),
        (MODEL, ["agentlightning.overlong_response=keep"], "agentlightning.overlong_response"),
        (MODEL, ["agentlightning.trace_agregator.level=trajectory"], "agentlightning.trace_agregator"),
        (MODEL, ["agentlightning.use_llm_proxy=maybe"], "agentlightning.use_llm_proxy"),
        (MODEL, ["trainer.save_freq=-2"], "trainer.save_freq"),
        (MODEL, ["trainer.total_training_steps=true"], "trainer.total_training_steps"),
        (MODEL, ["agentlightning.poll_interval=0"], "agentlightning.poll_interval"),
        ({**MODEL, "data": 5}, None, "data"),
        (MODEL, ["=3"], "=3"),
        (MODEL, ["data..x=1"], "data..x"),
    ],
)
def test_validation_errors_name_the_key(user: Any, overrides: Any, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        compose_config(user, overrides)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


def test_unknown_keys_suggest_and_verl_sections_are_strict_with_a_base() -> None:
    with pytest.raises(ConfigError, match="did you mean agentlightning.trace_aggregator"):
        compose_config(MODEL, ["agentlightning.trace_agregator.level=x"])
    with pytest.raises(ConfigError, match=r"data.train_batchsize: unknown key \(did you mean data.train_batch_size"):
        compose_config({**MODEL, "data": {"train_batchsize": 3}}, base=VERL_BASE)
    compose_config({**MODEL, "data": {"train_batchsize": 3}})  # without verl's defaults there is nothing to check


def test_non_mapping_config_is_rejected() -> None:
    with pytest.raises(ConfigError, match="<config>: expected a mapping"):
        compose_config([1, 2])  # type: ignore[arg-type]


@given(st.one_of(st.integers(), st.booleans(), st.none(), st.text(alphabet="abcxyz", min_size=1),
                 st.lists(st.integers(), max_size=3)))  # fmt: skip
def test_override_values_round_trip(value: Any) -> None:
    import json

    text = value if isinstance(value, str) else json.dumps(value)
    assert parse_override(f"a.b={text}") == ("a.b", value)


def test_override_spellings() -> None:
    assert parse_override("+trainer.n_gpus_per_node=1") == ("trainer.n_gpus_per_node", 1)
    assert parse_override("x=True") == ("x", True) and parse_override("x=None") == ("x", None)
    assert parse_override("x=~/models/q") == ("x", "~/models/q")
