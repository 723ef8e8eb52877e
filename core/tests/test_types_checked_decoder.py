"""The checked decoder of untrusted JSON (``from_json_dict``) always agrees with the converter (``from_dict``): the
same model for data it accepts, the same ValidationError for data it refuses."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import attrs
import pytest
from agentlightning.types import to_dict
from agentlightning.types.codegen import Declined, checked_dict_decoder
from agentlightning.types.core import Attempt, Rollout, Worker
from agentlightning.types.serialization import ValidationError, from_dict, from_json_dict
from agentlightning.types.tracer import Event, Link, OtelResource, Span, SpanContext, TraceStatus
from hypothesis import given, settings
from hypothesis import strategies as st

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_ids = st.text(min_size=1, max_size=12)
_maybe_float = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**6), 10**6))


def _context() -> st.SearchStrategy[Dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "trace_id": _ids,
            "span_id": _ids,
            "is_remote": st.booleans(),
            "trace_state": st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
        }
    )


_status = st.fixed_dictionaries(
    {"status_code": st.sampled_from(["UNSET", "OK", "ERROR"]), "description": st.none() | st.text(max_size=8)}
)
_attributes = st.dictionaries(st.text(max_size=8), _json, max_size=4)
_event = st.fixed_dictionaries({"name": _ids, "attributes": _attributes, "timestamp": _maybe_float})
_link = st.fixed_dictionaries({"context": _context(), "attributes": st.none() | _attributes})
_span = st.fixed_dictionaries(
    {
        "rollout_id": _ids,
        "attempt_id": _ids,
        "sequence_id": st.integers(min_value=0, max_value=2**40),
        "trace_id": _ids,
        "span_id": _ids,
        "parent_id": st.none() | _ids,
        "name": _ids,
        "status": _status,
        "attributes": _attributes,
        "events": st.lists(_event, max_size=2),
        "links": st.lists(_link, max_size=2),
        "start_time": _maybe_float,
        "end_time": _maybe_float,
        "context": st.none() | _context(),
        "parent": st.none() | _context(),
        "resource": st.fixed_dictionaries({"attributes": _attributes, "schema_url": st.text(max_size=6)}),
    }
)


def _paths(data: Any, prefix: tuple = ()) -> List[tuple]:
    """Every key path into nested dicts and lists of ``data``."""
    out: List[tuple] = []
    if isinstance(data, dict):
        for key, value in data.items():
            out.append(prefix + (key,))
            out.extend(_paths(value, prefix + (key,)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out.append(prefix + (index,))
            out.extend(_paths(value, prefix + (index,)))
    return out


@st.composite
def _mutated_span(draw: st.DrawFn) -> Dict[str, Any]:
    """A valid span's JSON, then (mostly) one change anywhere: a value replaced by any JSON value, a key dropped, an
    unknown key added, or an integral float for an int."""
    data = draw(_span)
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = data
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        action = draw(st.sampled_from(["replace", "drop", "add", "float"]))
        if action == "replace":
            parent[last] = draw(_json)
        elif action == "drop" and isinstance(parent, dict):
            del parent[last]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(_json)
        elif action == "float" and isinstance(parent[last], int) and not isinstance(parent[last], bool):
            parent[last] = float(parent[last])
    return json.loads(json.dumps(data))  # as a request body arrives: parsed from JSON


def _outcome(decode: Any, data: Any, cls: type) -> Any:
    try:
        return ("ok", decode(data, cls))
    except ValidationError as exc:
        return ("error", str(exc))


@settings(max_examples=400, deadline=None)
@given(_mutated_span())
def test_span_decoding_agrees_with_the_converter(data: Dict[str, Any]) -> None:
    expected = _outcome(from_dict, data, Span)
    assert _outcome(from_json_dict, data, Span) == expected
    if expected[0] == "ok":  # the same field types too (an int given for a float is a float)
        got = from_json_dict(data, Span)
        assert to_dict(got) == to_dict(expected[1])
        assert [type(v) for v in (got.start_time, got.end_time)] == [
            type(v) for v in (expected[1].start_time, expected[1].end_time)
        ]


@settings(max_examples=200, deadline=None)
@given(_span)
def test_valid_spans_take_the_fast_path_and_copy_their_dicts(data: Dict[str, Any]) -> None:
    decode = checked_dict_decoder(Span)
    assert decode is not None
    span = decode(data)  # no Declined: the usual span is decoded without the converter
    assert span == from_dict(data, Span)
    assert span.attributes is not data["attributes"]


@pytest.mark.parametrize("cls", [Span, TraceStatus, SpanContext, Event, Link, OtelResource, Attempt, Worker])
def test_non_objects_and_missing_fields_are_declined(cls: type) -> None:
    decode = checked_dict_decoder(cls)
    assert decode is not None
    for data in (None, [], "x", 1, {}):
        with pytest.raises((Declined, KeyError)):
            decode(data)
        assert _outcome(from_json_dict, data, cls) == _outcome(from_dict, data, cls)


def test_models_with_untested_field_types_always_use_the_converter() -> None:
    rollout = Rollout(rollout_id="ro-1", input={"x": 1}, start_time=1.0)
    data = json.loads(json.dumps(to_dict(rollout)))
    assert checked_dict_decoder(Rollout) is None  # ``input: Any`` and friends: left to the converter
    assert from_json_dict(data, Rollout) == from_dict(data, Rollout) == rollout


def test_a_failing_validator_gives_the_converters_error() -> None:
    data = {"status_code": "BAD", "description": None}
    with pytest.raises(ValidationError) as fast:
        from_json_dict(data, TraceStatus)
    with pytest.raises(ValidationError) as full:
        from_dict(data, TraceStatus)
    assert str(fast.value) == str(full.value)


@attrs.define(kw_only=True)
class _Counts:
    counts: Dict[str, int]
    note: Optional[str] = None


@attrs.define(kw_only=True)
class _Odd:
    runs: Dict[str, List[int]]


def test_dict_values_are_checked_by_their_type() -> None:
    decode = checked_dict_decoder(_Counts)
    assert decode is not None
    assert decode({"counts": {"a": 1}, "note": None}) == _Counts(counts={"a": 1})
    for counts in ({"a": 1.0}, {"a": True}, {"a": "1"}):  # the converter decides: 1, an error, an error
        with pytest.raises(Declined):
            decode({"counts": counts, "note": None})
        data = {"counts": counts}
        assert _outcome(from_json_dict, data, _Counts) == _outcome(from_dict, data, _Counts)


def test_dict_value_types_without_a_test_are_left_to_the_converter() -> None:
    assert checked_dict_decoder(_Odd) is None
    assert from_json_dict({"runs": {"a": [1]}}, _Odd) == _Odd(runs={"a": [1]})
