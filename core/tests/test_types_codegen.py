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
