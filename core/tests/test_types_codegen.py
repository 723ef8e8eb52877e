"""The code generated from the models' field lists: every span field has a rule, and a new field is handled."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Set

import attrs
import pytest
from agentlightning.types import from_dict, to_dict
from agentlightning.types.codegen import (
    UnsupportedField,
    dict_decoder,
    dict_encoder,
    field_rules,
    model_classes,
    positional_builder,
)
from agentlightning.types.core import Attempt, AttemptedRollout, Rollout, RolloutConfig
from agentlightning.types.tracer import Event, Link, OtelResource, Span, SpanContext, TraceStatus


def test_every_span_field_has_a_rule() -> None:
    # fails (UnsupportedField, naming the field) when a field whose type has no rule is added to a span model
    classes = model_classes(Span)
    assert set(classes) == {Span, TraceStatus, Event, Link, SpanContext, OtelResource}
    for cls in classes:
        assert [r.name for r in field_rules(cls)] == [a.name for a in attrs.fields(cls)]


@attrs.define(kw_only=True)
class _Part:
    label: str
    weight: Optional[float] = None
    extras: Dict[str, Any] = attrs.field(factory=dict, metadata={"extras": True})


@attrs.define(kw_only=True)
class _Grown:
    """A model like Span with fields of every kind, one of them new."""

    count: int
    name: str
    tags: Dict[str, Any]
    note: Optional[Dict[str, Any]]
    part: _Part
    maybe: Optional[_Part]
    parts: List[_Part]
    added: Optional[str] = None


def test_a_new_field_is_encoded_and_decoded_without_a_change() -> None:
    grown = _Grown(
        count=3,
        name="n",
        tags={"a": [1, 2]},
        note=None,
        part=_Part(label="p", weight=2.0, extras={"kept": 1}),
        maybe=None,
        parts=[_Part(label="q")],
        added="new",
    )
    data = dict_encoder(_Grown)(grown)
    assert data == to_dict(grown)
    assert dict_decoder(_Grown)(data) == grown == from_dict(data, _Grown)
    data["part"]["weight"] = 2  # JSON may hold an integer for a float
    assert type(dict_decoder(_Grown)(data).part.weight) is float


def test_a_field_without_a_rule_is_refused_by_name() -> None:
    @attrs.define
    class Odd:
        ok: str
        tags: Set[str]

    with pytest.raises(UnsupportedField, match=r"Odd\.tags"):
        dict_encoder(Odd)


def test_the_decoder_runs_validators() -> None:
    with pytest.raises(ValueError, match="status_code"):
        dict_decoder(TraceStatus)({"status_code": "BAD", "description": None})


def test_positional_builder_equals_init_and_skips_validation_only_when_asked() -> None:
    build = positional_builder(TraceStatus)
    assert build("OK", "d", {}) == TraceStatus(status_code="OK", description="d")
    assert build("BAD", None, {}).status_code == "BAD"  # no validation: for values already checked
    with pytest.raises(ValueError):
        positional_builder(TraceStatus, True)("BAD", None, {})
    span = Span.from_attributes(attributes={"a": 1}, trace_id="t" * 32, span_id="s" * 16)
    assert positional_builder(Span)(*(getattr(span, a.name) for a in attrs.fields(Span))) == span


def test_positional_builder_runs_post_init_only_when_asked() -> None:
    # a class with an __attrs_post_init__ gets no builder unless asked, and then the hook runs last, as in __init__
    with pytest.raises(UnsupportedField):
        positional_builder(AttemptedRollout)
    attempt = Attempt(rollout_id="ro-1", attempt_id="at-1", sequence_id=1, start_time=1.0)
    fields = {a.name: getattr(attempt, a.name, None) for a in attrs.fields(Rollout)}
    fields.update(rollout_id="ro-1", input={"q": 1}, start_time=2.0, status="running", config=RolloutConfig())
    build = positional_builder(AttemptedRollout, True, True)
    assert build(*fields.values(), attempt) == AttemptedRollout(**fields, attempt=attempt)
    with pytest.raises(ValueError, match="Inconsistent rollout_id"):
        build(*{**fields, "rollout_id": "ro-2"}.values(), attempt)


def test_attempted_rollout_of_equals_init() -> None:
    # AttemptedRollout.of goes through a generated join: validators and the consistency check as in __init__, and
    # __init__ itself while validators are disabled (which then checks nothing) or for a subclass
    rollout = Rollout(rollout_id="ro-1", input={"q": 1}, start_time=2.0, status="preparing", metadata={"m": 1})
    attempt = Attempt(rollout_id="ro-1", attempt_id="at-1", sequence_id=1, start_time=1.0)
    joined = AttemptedRollout.of(rollout, attempt)
    expected = AttemptedRollout(**{a.name: getattr(rollout, a.name) for a in attrs.fields(Rollout)}, attempt=attempt)
    assert type(joined) is AttemptedRollout and joined == expected
    assert joined.metadata is rollout.metadata  # the fields themselves, as __init__ keeps them
    assert AttemptedRollout.of(joined, attempt) == joined
    with pytest.raises(ValueError, match="Inconsistent rollout_id"):
        AttemptedRollout.of(rollout, attrs.evolve(attempt, rollout_id="ro-2"))
    with attrs.validators.disabled():
        bad = attrs.evolve(rollout, status="bogus")
        assert AttemptedRollout.of(bad, attempt).status == "bogus"  # as __init__: nothing validated
    with pytest.raises(ValueError, match="status"):
        AttemptedRollout.of(bad, attempt)

    @attrs.define(kw_only=True)
    class Tagged(AttemptedRollout):
        tag: str = "t"

    assert type(Tagged.of(rollout, attempt)) is Tagged


def test_inline_builder_statements_build_what_the_positional_builder_does() -> None:
    from agentlightning.types.codegen import compile_function, inline_builder

    namespace: Dict[str, Any] = {}
    lines = inline_builder(TraceStatus, "t", ["code", "None", "{}"], namespace, "x")
    source = "def make(code):\n" + "".join(f"    {line}\n" for line in lines) + "    return t\n"
    make = compile_function(source, "make", namespace, "test")
    assert make("OK") == positional_builder(TraceStatus)("OK", None, {}) == TraceStatus(status_code="OK")
    assert make("BAD").status_code == "BAD"  # no validation, as the positional builder without ``validate``
    with pytest.raises(ValueError, match="3 fields"):
        inline_builder(TraceStatus, "t", ["code"], {}, "y")
    with pytest.raises(UnsupportedField):
        inline_builder(AttemptedRollout, "r", ["x"] * len(attrs.fields(AttemptedRollout)), {}, "z")
