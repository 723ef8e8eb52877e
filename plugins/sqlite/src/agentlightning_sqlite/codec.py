"""Records to JSON text and back.

Writing and reading use orjson when installed, for the values both write alike (plain dicts, lists, strings, ints,
finite floats, bools, None: a span's text took ~10x less time than the stdlib ``json``); anything else (NaN, which
orjson would silently turn into null, huge integers, lone surrogates, other types) goes through the stdlib ``json``,
so the stored text still reads back as the stdlib wrote it.
The JSON is exactly what the project's converter (:func:`agentlightning.types.to_dict`) writes. Spans, by far the
most numerous records, and rollouts and attempts, read and rewritten by every span's heartbeat, take a direct path
that builds the same dicts and objects without the converter's generic dispatch (a few times faster). The span path is
generated from the span models' field lists (:mod:`agentlightning.types.codegen`); the rollout and attempt paths are
used only while those models have the fields they were written for. Any value a direct path cannot handle sends that
record through the converter instead.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional, Tuple, Type, TypeVar

import attrs
from agentlightning.store.errors import InvalidRequestError
from agentlightning.store.limits import orjson_writes_like_json
from agentlightning.types import from_dict, rollout_from_dict, to_dict
from agentlightning.types.codegen import UnsupportedField, dict_decoder, dict_encoder
from agentlightning.types.core import Attempt, Rollout, RolloutConfig
from agentlightning.types.tracer import Span

__all__ = ["encode", "decode", "decode_rollout", "span_to_dict", "span_from_dict", "FAST_SPANS", "FAST_RECORDS"]

T = TypeVar("T")


def _make_dumps() -> Callable[[Any], str]:
    """Compact JSON text: orjson for plain values (see the module docstring), the stdlib ``json`` otherwise."""
    std = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    try:
        import orjson
    except ImportError:
        return std
    fast = orjson.dumps

    def dumps(data: Any) -> str:
        if orjson_writes_like_json(data):
            try:
                return fast(data).decode()
            except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a lone surrogate
                pass
        return std(data)

    return dumps


_dumps = _make_dumps()


def _load_json() -> Callable[[str], Any]:
    """``json.loads``, through orjson when it is installed (about twice as fast); orjson refuses the few texts it
    reads differently (NaN, huge integers, lone surrogates), and those go to ``json.loads``."""
    try:
        import orjson
    except ImportError:
        return json.loads
    fast = orjson.loads
    fallback = json.loads

    def loads(text: str) -> Any:
        try:
            return fast(text)
        except orjson.JSONDecodeError:
            return fallback(text)

    return loads


_loads = _load_json()


def _span_codec() -> Tuple[Optional[Callable[[Span], Dict[str, Any]]], Optional[Callable[[Dict[str, Any]], Span]]]:
    try:
        return dict_encoder(Span), dict_decoder(Span)
    except UnsupportedField:  # a field without an encode/decode rule: every span uses the converter
        return None, None


span_to_dict, span_from_dict = _span_codec()
"""``to_dict(span)`` (attribute values shared rather than copied) and ``from_dict(d, Span)`` for dicts this module
wrote (trusted: no per-field type checks), generated from the span models' field lists; None when a field has no
rule (see :mod:`agentlightning.types.codegen`)."""

FAST_SPANS = span_to_dict is not None
"""Whether spans take the direct path (else every span uses the converter)."""


def _fields_are(cls: type, names: tuple[str, ...]) -> bool:
    return tuple(f.name for f in attrs.fields(cls)) == names


_CONFIG_KEYS = ("timeout_seconds", "unresponsive_seconds", "max_attempts", "retry_condition")
_ROLLOUT_KEYS = (
    "rollout_id",
    "input",
    "start_time",
    "end_time",
    "mode",
    "resources_id",
    "status",
    "config",
    "metadata",
)
_ATTEMPT_KEYS = (
    "rollout_id",
    "attempt_id",
    "sequence_id",
    "start_time",
    "end_time",
    "status",
    "worker_id",
    "last_heartbeat_time",
    "metadata",
)

FAST_RECORDS = all(
    (
        _fields_are(RolloutConfig, _CONFIG_KEYS),
        _fields_are(Rollout, _ROLLOUT_KEYS),
        _fields_are(Attempt, _ATTEMPT_KEYS),
    )
)
"""The same for plain rollouts and attempts (an ``AttemptedRollout`` always uses the converter)."""


# -- span -> dict -------------------------------------------------------------------------------------------------


def _config_to_dict(c: RolloutConfig) -> Dict[str, Any]:
    return {
        "timeout_seconds": c.timeout_seconds,
        "unresponsive_seconds": c.unresponsive_seconds,
        "max_attempts": c.max_attempts,
        "retry_condition": list(c.retry_condition),
    }


def _plain_metadata(metadata: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The metadata, when the converter would write it unchanged (JSON scalars, lists and dicts of them)."""
    if metadata is not None and not _plain(metadata):
        raise TypeError("metadata needs the converter")
    return metadata


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict:  # loops, not all(<generator>): one frame per level, so the deepest storable value fits
        for key, item in value.items():  # noqa: SIM110
            if type(key) is not str or not _plain(item):
                return False
        return True
    if kind is list:
        for item in value:  # noqa: SIM110
            if not _plain(item):
                return False
        return True
    return False


def rollout_to_dict(r: Rollout) -> Dict[str, Any]:
    """``to_dict(rollout)`` of a plain Rollout whose input and metadata are plain JSON (else TypeError)."""
    if not _plain(r.input):
        raise TypeError("input needs the converter")
    return {
        "rollout_id": r.rollout_id,
        "input": r.input,
        "start_time": r.start_time,
        "end_time": r.end_time,
        "mode": r.mode,
        "resources_id": r.resources_id,
        "status": r.status,
        "config": _config_to_dict(r.config),
        "metadata": _plain_metadata(r.metadata),
    }


def attempt_to_dict(a: Attempt) -> Dict[str, Any]:
    """``to_dict(attempt)`` of an Attempt whose metadata is plain JSON (else TypeError)."""
    return {
        "rollout_id": a.rollout_id,
        "attempt_id": a.attempt_id,
        "sequence_id": a.sequence_id,
        "start_time": a.start_time,
        "end_time": a.end_time,
        "status": a.status,
        "worker_id": a.worker_id,
        "last_heartbeat_time": a.last_heartbeat_time,
        "metadata": _plain_metadata(a.metadata),
    }


_TO_DICT: Dict[type, Callable[[Any], Dict[str, Any]]] = {}
if span_to_dict is not None:
    _TO_DICT[Span] = span_to_dict
if FAST_RECORDS:
    _TO_DICT[Rollout] = rollout_to_dict
    _TO_DICT[Attempt] = attempt_to_dict


# -- dict -> span -------------------------------------------------------------------------------------------------


def _number(value: Any) -> float:
    if type(value) is bool:
        raise TypeError("a boolean is not a number")
    return float(value)


def _optional_number(value: Any) -> Optional[float]:
    return None if value is None else _number(value)


def _config_from_dict(d: Dict[str, Any]) -> RolloutConfig:
    max_attempts = d["max_attempts"]
    if type(max_attempts) is not int:
        raise TypeError("max_attempts needs the converter")
    return RolloutConfig(
        timeout_seconds=_optional_number(d["timeout_seconds"]),
        unresponsive_seconds=_optional_number(d["unresponsive_seconds"]),
        max_attempts=max_attempts,
        retry_condition=list(d["retry_condition"]),
    )


def rollout_from_dict_fast(d: Dict[str, Any]) -> Rollout:
    """``from_dict(d, Rollout)`` for dicts this module wrote (trusted: strings are not re-checked)."""
    if "attempt" in d:
        raise KeyError("an AttemptedRollout needs the converter")
    return Rollout(
        rollout_id=d["rollout_id"],
        input=d["input"],
        start_time=_number(d["start_time"]),
        end_time=_optional_number(d["end_time"]),
        mode=d["mode"],
        resources_id=d["resources_id"],
        status=d["status"],
        config=_config_from_dict(d["config"]),
        metadata=d["metadata"],
    )


def attempt_from_dict(d: Dict[str, Any]) -> Attempt:
    """``from_dict(d, Attempt)`` for dicts this module wrote (trusted: strings are not re-checked)."""
    sequence_id = d["sequence_id"]
    if type(sequence_id) is not int:
        raise TypeError("sequence_id needs the converter")
    return Attempt(
        rollout_id=d["rollout_id"],
        attempt_id=d["attempt_id"],
        sequence_id=sequence_id,
        start_time=_number(d["start_time"]),
        end_time=_optional_number(d["end_time"]),
        status=d["status"],
        worker_id=d["worker_id"],
        last_heartbeat_time=_optional_number(d["last_heartbeat_time"]),
        metadata=d["metadata"],
    )


_FROM_DICT: Dict[type, Callable[[Dict[str, Any]], Any]] = {}
if span_from_dict is not None:
    _FROM_DICT[Span] = span_from_dict
if FAST_RECORDS:
    _FROM_DICT[Attempt] = attempt_from_dict

_FALLBACK = (KeyError, TypeError, ValueError, AttributeError)


# -- text ---------------------------------------------------------------------------------------------------------


def _refuse(record: Any, exc: Exception) -> InvalidRequestError:
    name = type(record).__name__
    ident = getattr(record, "rollout_id", None) or getattr(record, "resources_id", None) or ""
    label = f"{name} {ident}" if ident else name
    return InvalidRequestError(f"{label} cannot be stored as JSON: {exc}")


def encode(record: Any) -> str:
    """A model as compact JSON; refuses values JSON cannot hold with an error naming the record."""
    direct = _TO_DICT.get(type(record))
    if direct is not None:
        try:
            return _dumps(direct(record))
        except (TypeError, ValueError):
            pass  # e.g. an attrs object among the attributes: the converter knows how to write it
    try:
        return _dumps(to_dict(record))
    except (TypeError, ValueError) as exc:
        raise _refuse(record, exc) from exc


def decode(text: str, cls: Type[T]) -> T:
    data = _loads(text)
    direct = _FROM_DICT.get(cls)
    if direct is not None:
        try:
            return direct(data)  # type: ignore[no-any-return]
        except _FALLBACK:
            pass  # the converter decides, and names what is wrong
    return from_dict(data, cls)


def decode_rollout(text: str) -> Rollout:
    """A Rollout, or an AttemptedRollout if one was stored."""
    data = _loads(text)
    if FAST_RECORDS:
        try:
            return rollout_from_dict_fast(data)
        except _FALLBACK:
            pass
    return rollout_from_dict(data)
