"""The direct span codec writes exactly the converter's JSON and reads back what the converter would."""

from __future__ import annotations

import json
import math

import attrs
import pytest
from agentlightning.store.errors import InvalidRequestError
from agentlightning.types import from_dict, rollout_from_dict, to_dict
from agentlightning.types.core import Attempt, AttemptedRollout, Rollout, RolloutConfig
from agentlightning.types.resources import PromptTemplate
from agentlightning.types.tracer import Event, Link, OtelResource, Span, SpanContext, TraceStatus
from agentlightning_sqlite import codec
from hypothesis import example, given, settings
from hypothesis import strategies as st

scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | st.text(max_size=8)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
attributes = st.dictionaries(st.text(max_size=8), values, max_size=4)
extras = st.dictionaries(st.sampled_from(["custom", "vendor_x", "name", "zz"]), values, max_size=2)
times = st.none() | st.integers(0, 2**40) | st.floats(0, 2e9)
hexes = st.text("0123456789abcdef", min_size=1, max_size=32)
contexts = st.builds(
    SpanContext,
    trace_id=hexes,
    span_id=hexes,
    is_remote=st.booleans(),
    trace_state=st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
    extras=extras,
)
spans = st.builds(
    Span,
    rollout_id=st.text(min_size=1, max_size=10),
    attempt_id=st.text(min_size=1, max_size=10),
    sequence_id=st.integers(0, 10**6),
    trace_id=hexes,
    span_id=hexes,
    parent_id=st.none() | hexes,
    name=st.text(max_size=10),
    status=st.builds(
        TraceStatus,
        status_code=st.sampled_from(["UNSET", "OK", "ERROR"]),
        description=st.none() | st.text(max_size=5),
        extras=extras,
    ),
    attributes=attributes,
    events=st.lists(
        st.builds(Event, name=st.text(max_size=5), attributes=attributes, timestamp=times, extras=extras), max_size=2
    ),
    links=st.lists(st.builds(Link, context=contexts, attributes=st.none() | attributes, extras=extras), max_size=2),
    start_time=times,
    end_time=times,
    context=st.none() | contexts,
    parent=st.none() | contexts,
    resource=st.builds(OtelResource, attributes=attributes, schema_url=st.text(max_size=5)),
    extras=extras,
)


def test_fast_path_is_on_for_the_current_models() -> None:
    assert codec.FAST_SPANS


@settings(max_examples=60, deadline=None)
@given(span=spans)
def test_span_codec_matches_the_converter(span: Span) -> None:
    text = codec.encode(span)
    assert json.loads(text) == json.loads(json.dumps(to_dict(span)))
    reference = from_dict(json.loads(text), Span)
    decoded = codec.decode(text, Span)
    assert decoded == reference
    assert attrs.asdict(decoded) == attrs.asdict(reference)


def test_non_json_attribute_values_go_through_the_converter() -> None:
    span = Span.from_attributes(attributes={"prompt": PromptTemplate(template="hi")}, rollout_id="r", attempt_id="a")
    text = codec.encode(span)
    assert json.loads(text)["attributes"]["prompt"]["template"] == "hi"


def test_nan_survives_a_round_trip() -> None:
    span = Span.from_attributes(attributes={"reward": math.nan, "big": 2**70}, rollout_id="r", attempt_id="a")
    decoded = codec.decode(codec.encode(span), Span)
    assert math.isnan(decoded.attributes["reward"]) and decoded.attributes["big"] == 2**70


any_floats = st.floats(allow_nan=True, allow_infinity=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | any_floats | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5) | st.integers(0, 9), inner, max_size=3)
    ),
    max_leaves=10,
)
_STD = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@settings(max_examples=200, deadline=None)
@given(value=json_values)
@example(value={"1": None, 1: None})
def test_json_text_reads_back_as_the_stdlib_wrote_it(value: object) -> None:
    """orjson writes the plain values; NaN, infinities, huge ints and int keys go through the stdlib json. Read back,
    the text gives what the stdlib's own text gives (keys that collide once written, ``1`` and ``"1"``, collapse
    alike)."""
    assert _STD(json.loads(codec._dumps(value))) == _STD(json.loads(_STD(value)))


def test_lone_surrogates_and_odd_floats_are_written_as_the_stdlib_does() -> None:
    for value in ({"s": "\ud800"}, [math.inf, -math.inf], {"n": math.nan}, {1: "int key"}, [2**64]):
        assert codec._dumps(value) == _STD(value)


def test_unserialisable_values_name_the_record() -> None:
    span = Span.from_attributes(attributes={"x": object()}, rollout_id="r", attempt_id="a")
    with pytest.raises(InvalidRequestError, match="Span r cannot be stored as JSON"):
        codec.encode(span)


# -- rollouts and attempts ------------------------------------------------------------------------------------------

statuses = st.sampled_from(["queuing", "preparing", "running", "failed", "succeeded", "cancelled", "requeuing"])
attempt_statuses = st.sampled_from(["preparing", "running", "failed", "succeeded", "timeout", "unresponsive"])
metadata = st.none() | st.dictionaries(st.text(max_size=5), values, max_size=3)
configs = st.builds(
    RolloutConfig,
    timeout_seconds=st.none() | st.floats(0, 1e6) | st.integers(0, 100),
    unresponsive_seconds=st.none() | st.floats(0, 1e6),
    max_attempts=st.integers(1, 5),
    retry_condition=st.lists(st.sampled_from(["failed", "timeout", "unresponsive"]), max_size=2),
)
rollouts = st.builds(
    Rollout,
    rollout_id=st.text(min_size=1, max_size=10),
    input=values,
    start_time=st.floats(0, 2e9) | st.integers(0, 2**40),
    end_time=times,
    mode=st.none() | st.sampled_from(["train", "val", "test"]),
    resources_id=st.none() | st.text(max_size=5),
    status=statuses,
    config=configs,
    metadata=metadata,
)
attempts = st.builds(
    Attempt,
    rollout_id=st.text(min_size=1, max_size=10),
    attempt_id=st.text(min_size=1, max_size=10),
    sequence_id=st.integers(1, 10**6),
    start_time=st.floats(0, 2e9),
    end_time=times,
    status=attempt_statuses,
    worker_id=st.none() | st.text(max_size=5),
    last_heartbeat_time=times,
    metadata=metadata,
)


def test_record_fast_path_is_on_for_the_current_models() -> None:
    assert codec.FAST_RECORDS


def _assert_round_trip(record: object, text: str, decoded: object, reference: object) -> None:
    assert text == codec._dumps(to_dict(record))  # the very same text as the converter's
    assert decoded == reference
    assert type(decoded) is type(reference)
    assert attrs.asdict(decoded) == attrs.asdict(reference)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(rollout=rollouts)
def test_rollout_codec_matches_the_converter(rollout: Rollout) -> None:
    text = codec.encode(rollout)
    _assert_round_trip(rollout, text, codec.decode_rollout(text), rollout_from_dict(json.loads(text)))


@settings(max_examples=60, deadline=None)
@given(attempt=attempts)
def test_attempt_codec_matches_the_converter(attempt: Attempt) -> None:
    text = codec.encode(attempt)
    _assert_round_trip(attempt, text, codec.decode(text, Attempt), from_dict(json.loads(text), Attempt))


def test_attempted_rollouts_and_non_json_values_go_through_the_converter() -> None:
    rollout = Rollout(rollout_id="r", input={"prompt": PromptTemplate(template="hi")}, start_time=1.0)
    text = codec.encode(rollout)
    assert json.loads(text)["input"]["prompt"]["template"] == "hi"
    attempt = Attempt(rollout_id="r", attempt_id="a", sequence_id=1, start_time=1.0, metadata={"t": (1, 2)})
    assert json.loads(codec.encode(attempt))["metadata"] == {"t": [1, 2]}
    attempt = attrs.evolve(attempt, metadata={"t": [1, 2]})
    attempted = AttemptedRollout.of(Rollout(rollout_id="r", input=1, start_time=1.0), attempt)
    decoded = codec.decode_rollout(codec.encode(attempted))
    assert type(decoded) is AttemptedRollout and decoded == attempted
    with pytest.raises(InvalidRequestError, match="Attempt r cannot be stored as JSON"):
        codec.encode(Attempt(rollout_id="r", attempt_id="a", sequence_id=1, start_time=1.0, metadata={"x": object()}))
