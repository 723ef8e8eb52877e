"""What a store accepts: values it can write and read back exactly, on every backend and over HTTP.

A value nested deeper than :data:`MAX_JSON_DEPTH` levels, or holding an integer JSON readers do not read back exactly
(outside ``[MIN_JSON_INT, MAX_JSON_INT]``: beyond 64 bits orjson reads a float), is refused with
:class:`~agentlightning.store.errors.InvalidRequestError` before anything is written, so nothing stored ever becomes
unreadable. Span sequence ids stay within ``±MAX_SEQUENCE_ID`` (SQLite integers are 64-bit, and counters must
still have room to grow).

The checks walk only containers and integers; strings, floats and other scalars cost one type test each.
"""

from __future__ import annotations

from typing import Any

import attrs

from .errors import InvalidRequestError

__all__ = [
    "MAX_JSON_DEPTH",
    "MIN_JSON_INT",
    "MAX_JSON_INT",
    "MAX_SEQUENCE_ID",
    "check_value",
    "check_span",
    "orjson_writes_like_json",
]

MAX_JSON_DEPTH = 400
"""Deepest nesting of containers (dicts, lists) a stored value or an HTTP request body may have."""

MIN_JSON_INT = -(2**63)
MAX_JSON_INT = 2**64 - 1
"""Integers a stored value may hold (what JSON readers, orjson included, read back as the same integer)."""

MAX_SEQUENCE_ID = 2**62
"""Largest span sequence id (in absolute value) a store accepts."""

_LEAVES = frozenset({str, float, bool, type(None), bytes})


class _TooDeep(Exception):
    pass


class _BadInt(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


_NUMBERS = frozenset({int, float, bool})


def _plain_sequence(items: Any) -> bool:
    """Whether ``items`` holds only numbers within the integer range, or only strings (token id lists, texts): told
    by ``min``/``max`` in C, which raise on mixed kinds (a container among numbers, a number among strings)."""
    if len(items) < 8:
        return False  # the loop is as cheap
    try:
        low, high = min(items), max(items)
    except (TypeError, ValueError):
        return False
    low_kind, high_kind = type(low), type(high)
    if low_kind in _NUMBERS and high_kind in _NUMBERS:
        return bool(low >= MIN_JSON_INT and high <= MAX_JSON_INT)
    return low_kind is str and high_kind is str


def _walk(value: Any, room: int) -> None:
    """Raise :class:`_TooDeep` when containers nest more than ``room`` levels, :class:`_BadInt` on a wide integer."""
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list or kind is tuple:
        if _plain_sequence(value):
            return
        items = value
    elif kind is int:
        if not MIN_JSON_INT <= value <= MAX_JSON_INT:
            raise _BadInt(value)
        return
    elif kind in _LEAVES:
        return
    elif isinstance(value, int) and not isinstance(value, bool):
        if not MIN_JSON_INT <= value <= MAX_JSON_INT:
            raise _BadInt(int(value))
        return
    elif isinstance(value, dict):
        items = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    elif attrs.has(kind):
        items = [getattr(value, field.name) for field in attrs.fields(kind)]  # one level, like its JSON object
    else:
        return
    if room <= 0:
        raise _TooDeep()
    room -= 1
    for item in items:
        if type(item) not in _LEAVES:
            _walk(item, room)


def check_value(value: Any, what: str, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse ``value`` (named ``what`` in the error) if a store could not write it and read it back exactly."""
    if type(value) in _LEAVES:
        return
    try:
        _walk(value, max_depth)
    except _TooDeep:
        raise InvalidRequestError(f"{what} is nested more than {max_depth} levels deep") from None
    except _BadInt as exc:
        raise InvalidRequestError(
            f"{what} holds the integer {exc.value}, outside the range stores keep exactly "
            f"[{MIN_JSON_INT}, {MAX_JSON_INT}]: send it as a string"
        ) from None
    except RecursionError:
        raise InvalidRequestError(f"{what} is nested too deeply to store") from None


def check_span(span: Any) -> None:
    """Refuse a span whose sequence id or free-form parts (attributes, events, links, resource, extras) a store could
    not keep exactly."""
    sequence_id = span.sequence_id
    if type(sequence_id) is int and -MAX_SEQUENCE_ID <= sequence_id <= MAX_SEQUENCE_ID:
        pass
    elif isinstance(sequence_id, int) and not isinstance(sequence_id, bool):
        raise InvalidRequestError(
            f"span {span.span_id}: sequence_id {sequence_id} is out of range (at most {MAX_SEQUENCE_ID} in magnitude)"
        )
    attributes = span.attributes
    for item in attributes.values():  # the common case, flat attributes, without a call per value
        kind = type(item)
        if kind in _LEAVES or (kind is int and MIN_JSON_INT <= item <= MAX_JSON_INT):
            continue
        check_value(attributes, f"the attributes of {_span_what(span)}")
        break
    for event in span.events:
        check_value(event, f"an event of {_span_what(span)}")
    for link in span.links:
        check_value(link, f"a link of {_span_what(span)}")
    resource = span.resource.attributes
    for item in resource.values() if resource else ():  # flat too, as a tracer's resource usually is
        kind = type(item)
        if kind in _LEAVES or (kind is int and MIN_JSON_INT <= item <= MAX_JSON_INT):
            continue
        check_value(resource, f"the resource of {_span_what(span)}")
        break
    if span.extras:
        check_value(span.extras, f"the extra fields of {_span_what(span)}")


def _span_what(span: Any) -> str:
    return f"span {span.span_id} of rollout {span.rollout_id}"


def orjson_writes_like_json(value: Any) -> bool:
    """Whether ``value`` holds only what orjson writes as the stdlib ``json`` does, or refuses (TypeError: non-string
    keys, integers beyond 64 bits, lone surrogates): dicts, lists, tuples, strings, ints, bools, None and finite
    floats (orjson writes NaN and the infinities as null, and other types its own way). Stores writing JSON text with
    orjson send anything else through the stdlib."""
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    elif kind is float:
        return bool(value - value == 0.0)  # False for NaN and the infinities
    else:
        return kind is str or kind is int or kind is bool or value is None
    for item in items:
        kind = type(item)
        if kind is str or kind is int or item is None or kind is bool:
            continue
        if kind is float:
            if item - item != 0.0:
                return False
        elif not orjson_writes_like_json(item):
            return False
    return True
