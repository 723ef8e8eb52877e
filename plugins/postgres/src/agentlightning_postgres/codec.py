"""Records to JSON text and back, in the shape the project's converter (:func:`agentlightning.types.to_dict`) writes.

The text is pure ASCII: PostgreSQL text holds neither NUL characters nor lone surrogates, and JSON escapes keep
both (and the text stays valid in any server encoding).

Spans, by far the most numerous records, take the direct path generated from their field lists
(:mod:`agentlightning.types.codegen`) instead of the converter's generic dispatch; a span that path cannot handle goes
through the converter. With orjson installed (the ``fast`` extra; the store server has it), text is written and read
by orjson when that gives the stdlib's answer: values made only of dicts, lists, strings, 64-bit integers, finite
floats, booleans and None, written as ASCII. Anything else (NaN and the infinities, which orjson would write as
null; huge integers; lone surrogates; text outside ASCII) is written by the stdlib ``json``, and text orjson refuses
to read, or could read differently (a run of 19 digits: orjson reads integers beyond 64 bits as floats), is read by
it.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional, Type, TypeVar

from agentlightning.store.errors import InvalidRequestError
from agentlightning.store.limits import orjson_writes_like_json
from agentlightning.types import from_dict, rollout_from_dict, to_dict
from agentlightning.types.core import Rollout
from agentlightning.types.tracer import Span

__all__ = ["encode", "decode", "decode_rollout"]

T = TypeVar("T")

_std_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def _make_dumps() -> Callable[[Any], str]:
    try:
        import orjson
    except ImportError:
        return _std_dumps
    fast = orjson.dumps

    def dumps(data: Any) -> str:
        if orjson_writes_like_json(data):
            try:
                text = fast(data)
            except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a lone surrogate, a key
                pass
            else:
                if text.isascii():
                    return text.decode("ascii")
        return _std_dumps(data)

    return dumps


_DIGITS_TO_ZERO = bytes(48 if 48 <= byte < 58 else 120 for byte in range(256))
"""Digits to ``0``, any other byte to ``x``: a run of 19 digits is then found by a plain substring search (a regular
expression takes far longer on text full of digits)."""
_LONG_RUN = b"0" * 19


def _make_loads() -> Callable[[str], Any]:
    try:
        import orjson
    except ImportError:
        return json.loads
    fast, fallback = orjson.loads, json.loads

    def loads(text: str) -> Any:
        data = text.encode("utf-8", "surrogatepass")
        if data.translate(_DIGITS_TO_ZERO).find(_LONG_RUN) >= 0:  # orjson reads integers beyond 64 bits as floats
            return fallback(text)
        try:
            return fast(data)
        except orjson.JSONDecodeError:  # NaN, escaped lone surrogates: the stdlib reads them
            return fallback(text)

    return loads


_dumps = _make_dumps()
_loads = _make_loads()


def _span_paths() -> tuple[Optional[Callable[[Any], Dict[str, Any]]], Optional[Callable[[Dict[str, Any]], Any]]]:
    from agentlightning.types.codegen import UnsupportedField, dict_decoder, dict_encoder

    try:
        return dict_encoder(Span), dict_decoder(Span)
    except UnsupportedField:  # a span field without a rule: spans use the converter
        return None, None


_span_to_dict, _span_from_dict = _span_paths()
_DIRECT_FAILURES = (KeyError, TypeError, ValueError, AttributeError)


def encode(record: Any) -> str:
    """A model as compact JSON; refuses values JSON cannot hold with an error naming the record."""
    if _span_to_dict is not None and type(record) is Span:
        try:
            return _dumps(_span_to_dict(record))
        except (TypeError, ValueError):
            pass  # e.g. an attrs object among the attributes: the converter knows how to write it
    try:
        return _dumps(to_dict(record))
    except (TypeError, ValueError) as exc:
        name = type(record).__name__
        ident = getattr(record, "rollout_id", None) or getattr(record, "resources_id", None) or ""
        raise InvalidRequestError(f"{name} {ident}".strip() + f" cannot be stored as JSON: {exc}") from exc


def decode(text: str, cls: Type[T]) -> T:
    data = _loads(text)
    if cls is Span and _span_from_dict is not None:
        try:
            return _span_from_dict(data)  # type: ignore[no-any-return]
        except _DIRECT_FAILURES:
            pass  # the converter decides, and names what is wrong
    return from_dict(data, cls)


def decode_rollout(text: str) -> Rollout:
    """A Rollout, or an AttemptedRollout if one was stored."""
    return rollout_from_dict(_loads(text))
