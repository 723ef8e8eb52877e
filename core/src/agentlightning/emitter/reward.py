"""Rewards: ``emit_reward``, the ``@reward`` decorator, and readers that find rewards in spans."""

from __future__ import annotations

import functools
import inspect
import json
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, TypeVar, Union

from agentlightning.semconv import AGL_ANNOTATION, LightningSpanAttributes, RewardAttributes, RewardDimension
from agentlightning.tracer.attributes import filter_and_unflatten_attributes
from agentlightning.types.tracer import SpanCoreFields

from .annotation import emit_annotation

__all__ = [
    "emit_reward",
    "reward",
    "get_rewards_from_span",
    "get_reward_value",
    "is_reward_span",
    "find_reward_spans",
    "find_final_reward",
]

F = TypeVar("F", bound=Callable[..., Any])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))


def emit_reward(
    reward: Union[float, Dict[str, float]],
    *,
    primary_key: Optional[str] = None,
    attributes: Optional[Dict[str, Any]] = None,
    propagate: bool = True,
) -> SpanCoreFields:
    """Record a reward: a number, or named dimensions of which ``primary_key`` is the primary one.

    The span is an ``agentlightning.annotation`` with ``agentlightning.reward.<i>.name`` / ``.value``, primary first.
    """
    if isinstance(reward, dict):
        if primary_key is None or primary_key not in reward:
            raise ValueError(f"emit_reward: primary_key {primary_key!r} must name one of {list(reward)}")
        bad = [k for k, v in reward.items() if not _is_number(v)]
        if bad:
            raise ValueError(f"emit_reward: reward dimensions {bad} are not numbers")
        ordered = [primary_key, *(k for k in reward if k != primary_key)]
        dims = [{RewardAttributes.REWARD_NAME: k, RewardAttributes.REWARD_VALUE: float(reward[k])} for k in ordered]
    elif _is_number(reward):
        dims = [{RewardAttributes.REWARD_NAME: "primary", RewardAttributes.REWARD_VALUE: float(reward)}]
    else:
        raise TypeError(f"emit_reward expects a number or a dict of numbers, got {type(reward).__name__}")
    annotation: Dict[str, Any] = {LightningSpanAttributes.REWARD: dims}
    if attributes:
        annotation.update(attributes)
    return emit_annotation(annotation, propagate=propagate)


def reward(fn: F) -> F:
    """Decorate a grader: its (sync or async) return value is emitted with :func:`emit_reward` and returned."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            result = await fn(*args, **kwargs)
            emit_reward(result)
            return result

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        emit_reward(result)
        return result

    return wrapper  # type: ignore[return-value]


def _attributes(span: Any) -> Dict[str, Any]:
    return dict(getattr(span, "attributes", None) or {})


def get_rewards_from_span(span: Any) -> List[RewardDimension]:
    """The reward dimensions a span carries (primary first); [] when it carries none."""
    attrs = _attributes(span)
    try:
        raw = filter_and_unflatten_attributes(attrs, LightningSpanAttributes.REWARD)
    except ValueError:
        return []
    items = raw if isinstance(raw, list) else []
    out = []
    for item in items:
        if isinstance(item, dict) and _is_number(item.get(RewardAttributes.REWARD_VALUE)):
            out.append(RewardDimension(str(item.get(RewardAttributes.REWARD_NAME, "")), float(item["value"])))
    return out


def _agentops_reward(attrs: Dict[str, Any]) -> Optional[float]:
    for key in ("agentops.task.output", "agentops.entity.output"):
        payload = attrs.get(key)
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except ValueError:
                continue
        if isinstance(payload, dict) and payload.get("type") == "reward":
            warnings.warn(
                "Reward found in an AgentOps payload; emit rewards with agentlightning.emit_reward instead",
                DeprecationWarning,
                stacklevel=3,
            )
            value = payload.get("value")
            return float(value) if isinstance(value, (int, float)) else None
    return None


def get_reward_value(span: Any) -> Optional[float]:
    """The primary reward of a span (v0.3 attributes, then AgentOps payloads, then the legacy ``reward``)."""
    dims = get_rewards_from_span(span)
    if dims:
        return dims[0].value
    attrs = _attributes(span)
    value = _agentops_reward(attrs)
    if value is not None:
        return value
    if getattr(span, "name", None) == AGL_ANNOTATION and _is_number(attrs.get("reward")):
        return float(attrs["reward"])
    return None


def is_reward_span(span: Any) -> bool:
    return get_reward_value(span) is not None


def find_reward_spans(spans: Iterable[Any]) -> List[Any]:
    return [span for span in spans if is_reward_span(span)]


def find_final_reward(spans: Sequence[Any]) -> Optional[float]:
    """The reward of the last span that has one, or None."""
    for span in reversed(list(spans)):
        value = get_reward_value(span)
        if value is not None:
            return value
    return None
