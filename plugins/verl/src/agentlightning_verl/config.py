"""Config composition, as a pure function: verl's defaults <- ours <- the user's dict <- ``key.path=value`` overrides.

The result is a plain nested dict. The GPU backend turns it into verl's OmegaConf config; the algorithm reads our
``agentlightning`` section and the few verl keys that drive the loop (batch size, ``rollout.n``, lengths,
frequencies). Errors are :class:`ConfigError` naming the dotted key that was wrong.
"""

from __future__ import annotations

import copy
import difflib
import json
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Union

from agentlightning.training import OVERLONG_PROMPT_POLICIES, OVERLONG_RESPONSE_POLICIES, ROW_LEVELS

__all__ = ["ConfigError", "DEFAULTS", "compose_config", "parse_override", "get_key", "rows_config_kwargs"]

Overrides = Union[Mapping[str, Any], Sequence[str], None]


class ConfigError(ValueError):
    """A bad configuration value; ``key`` is its dotted path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


# Our defaults, laid over verl's ppo_trainer defaults. The `agentlightning` section is ours alone and is checked
# strictly (unknown keys are errors); the other sections are verl's.
DEFAULTS: Dict[str, Any] = {
    "agentlightning": {
        "trace_aggregator": {
            "level": "transition",  # "transition": a row per LLM call; "trajectory": merge exact continuations
            "trajectory_max_prompt_length": 2048,
            "trajectory_max_response_length": 8192,
        },
        "overlong_prompt": "drop",  # "drop" | "truncate"
        "overlong_response": "truncate",  # "truncate" | "zero_reward" | "drop"
        "reward_fillna_value": 0.0,  # the reward of a rollout that reported none
        "rollout_level_advantage": True,  # group statistics over rollouts, not rows (agent-lightning v1.0)
        "resource_name": "main_llm",  # the name runners find the LLM under
        "use_llm_proxy": "auto",  # True | False | "auto": the Trainer's proxy, else a new one if litellm is there
        "rollout_timeout_seconds": 1200.0,
        "rollout_unresponsive_seconds": 1200.0,
        "wait_grace_seconds": 60.0,  # how long past the rollout timeout to wait before leaving rollouts out
        "poll_interval": 1.0,
        "seed": 0,
    },
    "data": {
        "train_batch_size": 8,
        "val_batch_size": None,
        "max_prompt_length": 4096,
        "max_response_length": 2048,
        "filter_overlong_prompts": False,
    },
    "actor_rollout_ref": {
        "model": {"path": None},
        "rollout": {"name": "vllm", "mode": "async", "n": 4, "temperature": 1.0, "val_kwargs": {"temperature": 0.0}},
    },
    "algorithm": {"adv_estimator": "grpo"},
    "trainer": {
        "total_epochs": 1,
        "total_training_steps": None,
        "save_freq": -1,
        "test_freq": -1,
        "val_before_train": True,
        "resume_mode": "auto",
        "default_local_dir": "checkpoints/agentlightning_verl",
        "use_v1": False,  # our loop drives verl's RayPPOTrainer workers step by step
    },
}


def parse_override(text: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``; values are JSON when they parse as JSON (numbers, true/false/null, lists,
    quoted strings), else plain strings. Hydra-style ``+a.b=3`` is accepted."""
    key, sep, raw = text.partition("=")
    key = key.strip().lstrip("+")
    if not sep or not key:
        raise ConfigError(text, "an override must look like key.path=value")
    raw = raw.strip()
    lowered = {"True": "true", "False": "false", "None": "null", "~": "null"}.get(raw, raw)
    try:
        return key, json.loads(lowered)
    except ValueError:
        return key, raw


def _merge(into: Dict[str, Any], update: Mapping[str, Any], path: str, strict_under: Iterable[str]) -> None:
    for key, value in update.items():
        if not isinstance(key, str):
            raise ConfigError(f"{path}{key!r}", "config keys must be strings")
        dotted = f"{path}{key}"
        if key not in into:
            strict = any(dotted.startswith(prefix + ".") for prefix in strict_under)
            if strict:
                close = difflib.get_close_matches(key, [k for k in into], n=1)
                hint = f" (did you mean {path}{close[0]}?)" if close else ""
                raise ConfigError(dotted, f"unknown key{hint}")
            into[key] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else copy.deepcopy(value)
            continue
        current = into[key]
        if isinstance(current, dict):
            if value is None:
                into[key] = None
            elif not isinstance(value, Mapping):
                raise ConfigError(dotted, f"expected a mapping, got {type(value).__name__} {value!r}")
            else:
                _merge(current, value, dotted + ".", strict_under)
        else:
            into[key] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else copy.deepcopy(value)


def _nest(dotted: Mapping[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in dotted.items():
        parts = key.split(".")
        if any(not p for p in parts):
            raise ConfigError(key, "empty component in a dotted key")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(key, f"{part} is set to a value and a mapping at once")
            node = child
        node[parts[-1]] = value
    return out


def get_key(config: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """``config["a"]["b"]`` for ``"a.b"``; ``default`` when a part is missing."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def compose_config(
    user: Optional[Mapping[str, Any]] = None,
    overrides: Overrides = None,
    *,
    base: Optional[Mapping[str, Any]] = None,
    require_model: bool = True,
) -> Dict[str, Any]:
    """``base`` (verl's defaults, when known) <- :data:`DEFAULTS` <- ``user`` <- ``overrides``, validated.

    With ``base`` given, verl's sections are strict too (like Hydra's struct mode): an unknown key is an error.
    ``overrides`` are ``["a.b=1", ...]`` strings or a ``{"a.b": 1}`` mapping.
    """
    if user is not None and not isinstance(user, Mapping):
        raise ConfigError("<config>", f"expected a mapping, got {type(user).__name__}")
    strict = ["agentlightning"] + (list(base) if base is not None else [])
    config: Dict[str, Any] = copy.deepcopy(dict(base)) if base is not None else {}
    _merge(config, DEFAULTS, "", strict_under=[])
    _merge(config, user or {}, "", strict)
    if overrides:
        pairs = dict(parse_override(o) for o in overrides) if not isinstance(overrides, Mapping) else overrides
        _merge(config, _nest(pairs), "", strict)
    validate(config, require_model=require_model)
    return config


def _check_int(config: Mapping[str, Any], key: str, minimum: int, optional: bool = False) -> None:
    value = get_key(config, key)
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        need = f"an int >= {minimum}" + (" or null" if optional else "")
        raise ConfigError(key, f"must be {need}, got {value!r}")


def _check_choice(config: Mapping[str, Any], key: str, choices: Sequence[Any]) -> None:
    value = get_key(config, key)
    if value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _check_number(config: Mapping[str, Any], key: str, positive: bool = True) -> None:
    value = get_key(config, key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or (positive and value <= 0):
        raise ConfigError(key, f"must be a {'positive ' if positive else ''}number, got {value!r}")


def validate(config: Mapping[str, Any], *, require_model: bool = True) -> None:
    """Check the keys the algorithm relies on; raise :class:`ConfigError` naming the first bad one."""
    if require_model:
        path = get_key(config, "actor_rollout_ref.model.path")
        if not isinstance(path, str) or not path.strip():
            raise ConfigError("actor_rollout_ref.model.path", f"must name the model to train, got {path!r}")
    for key in ("data.train_batch_size", "actor_rollout_ref.rollout.n", "data.max_prompt_length",
                "data.max_response_length", "trainer.total_epochs",
                "agentlightning.trace_aggregator.trajectory_max_prompt_length",
                "agentlightning.trace_aggregator.trajectory_max_response_length"):  # fmt: skip
        _check_int(config, key, 1)
    _check_int(config, "data.val_batch_size", 1, optional=True)
    _check_int(config, "trainer.total_training_steps", 1, optional=True)
    for key in ("trainer.save_freq", "trainer.test_freq"):
        _check_int(config, key, -1)
    _check_choice(config, "actor_rollout_ref.rollout.mode", ["async"])
    _check_choice(config, "agentlightning.trace_aggregator.level", list(ROW_LEVELS))
    _check_choice(config, "agentlightning.overlong_prompt", list(OVERLONG_PROMPT_POLICIES))
    _check_choice(config, "agentlightning.overlong_response", list(OVERLONG_RESPONSE_POLICIES))
    _check_choice(config, "agentlightning.use_llm_proxy", [True, False, "auto"])
    _check_choice(config, "agentlightning.rollout_level_advantage", [True, False])
    _check_choice(config, "trainer.resume_mode", ["auto", "disable", "resume_path"])
    _check_number(config, "agentlightning.reward_fillna_value", positive=False)
    for key in ("rollout_timeout_seconds", "rollout_unresponsive_seconds", "wait_grace_seconds", "poll_interval"):
        _check_number(config, f"agentlightning.{key}")
    _check_number(config, "actor_rollout_ref.rollout.temperature", positive=False)
    name = get_key(config, "agentlightning.resource_name")
    if not isinstance(name, str) or not name:
        raise ConfigError("agentlightning.resource_name", f"must be a non-empty string, got {name!r}")


def rows_config_kwargs(config: Mapping[str, Any]) -> Dict[str, Any]:
    """Keyword arguments of :class:`agentlightning.training.RowsConfig` for a composed config."""
    level = get_key(config, "agentlightning.trace_aggregator.level")
    if level == "trajectory":
        max_prompt = get_key(config, "agentlightning.trace_aggregator.trajectory_max_prompt_length")
        max_response = get_key(config, "agentlightning.trace_aggregator.trajectory_max_response_length")
    else:
        max_prompt = get_key(config, "data.max_prompt_length")
        max_response = get_key(config, "data.max_response_length")
    return {
        "level": level,
        "max_prompt_length": max_prompt,
        "max_response_length": max_response,
        "overlong_prompt": get_key(config, "agentlightning.overlong_prompt"),
        "overlong_response": get_key(config, "agentlightning.overlong_response"),
        "reward_fill": float(get_key(config, "agentlightning.reward_fillna_value")),
    }
