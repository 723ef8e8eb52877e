"""Packed spans: an exact round trip, fresh objects on every read, and nothing left for the garbage collector."""

from __future__ import annotations

import gc
from typing import Any, Dict, List, Optional

import attrs
import pytest
from agentlightning.store.errors import NotFoundError
from agentlightning.types.core import EnqueueRolloutRequest
from agentlightning.types.tracer import Event, Link, OtelResource, Span, SpanContext, TraceStatus
from agentlightning_memory import InMemoryLightningStore
from agentlightning_memory.packing import pack_span, unpack_span
from hypothesis import given, settings
from hypothesis import strategies as st


def plain_span(seq: int = 1, **attributes: Any) -> Span:
    return Span.from_attributes(
        attributes=attributes or {"k": "v", "n": 3, "f": 1.5, "b": True, "none": None},
        rollout_id="ro-1",
        attempt_id="at-1",
        sequence_id=seq,
        name="step",
        trace_id="a" * 32,
        span_id=f"{seq:016x}",
        parent_id="f" * 16,
        start_time=1.0,
        end_time=2.0,
    )


def rich_span() -> Span:
    context = SpanContext(trace_id="b" * 32, span_id="c" * 16, is_remote=True, trace_state={"v": "1"}, extras={"x": 1})
    return Span(
        rollout_id="ro-1",
        attempt_id="at-2",
        sequence_id=7,
        trace_id="b" * 32,
        span_id="c" * 16,
        parent_id=None,
        name="rich",
        status=TraceStatus(status_code="ERROR", description="boom", extras={"why": "x"}),
        attributes={"list": [1, 2], "nested": {"a": [3]}},
        events=[Event(name="e", attributes={"k": 1}, timestamp=3.0, extras={"more": True})],
        links=[Link(context=context, attributes=None), Link(context=context, attributes={"w": 2}, extras={"y": 0})],
        start_time=None,
        end_time=None,
        context=context,
        parent=None,
        resource=OtelResource(attributes={"service.name": "svc"}, schema_url="https://schema"),
        extras={"unknown_key": {"kept": True}},
    )


def test_spans_are_packed_for_the_current_models() -> None:
    # generated from the span models' field rules: False would mean a field without a rule (spans kept as objects)
    from agentlightning_memory import packing

    assert packing.PACKED
    assert len(pack_span(rich_span())) > 3 and len(pack_span(plain_span())) > 3


def test_a_field_added_to_the_span_is_packed_without_a_change() -> None:
    from agentlightning_memory.packing import _Generator

    @attrs.define(kw_only=True)
    class GrownSpan(Span):
        flavour: Optional[str] = None
        weights: Dict[str, Any] = attrs.field(factory=dict)
        notes: List[Event] = attrs.field(factory=list)

    pack, unpack = _Generator().span_functions(GrownSpan)
    base = rich_span()
    grown = GrownSpan(
        **{a.name: getattr(base, a.name) for a in attrs.fields(Span)},
        flavour="sour",
        weights={"w": 1},
        notes=[Event(name="n", attributes={"a": 1})],
    )
    packed = pack(grown)
    assert len(packed) > 3 and "sour" in packed
    again = unpack(packed)
    assert type(again) is GrownSpan and again == grown and again.weights is not grown.weights


@pytest.mark.parametrize("make", [plain_span, rich_span])
def test_round_trip_is_equal_and_fresh(make: Any) -> None:
    span = make()
    packed = pack_span(span)
    assert type(packed) is tuple and not any(isinstance(v, Span) for v in packed)
    again = unpack_span(packed)
    assert again == span and again is not span
    for name in ("status", "attributes", "events", "links", "context", "resource", "extras"):
        assert getattr(again, name) is not getattr(span, name) or getattr(span, name) is None
    second = unpack_span(packed)
    second.attributes["added"] = 1
    second.status.extras["added"] = 1
    assert unpack_span(packed) == span  # mutating what a read returned changes nothing stored


def test_mutating_the_original_after_packing_changes_nothing_stored() -> None:
    span = plain_span()
    packed = pack_span(span)
    expected = unpack_span(packed)
    span.attributes["late"] = "change"
    span.name = "renamed"
    assert unpack_span(packed) == expected


@pytest.mark.parametrize(
    "change",
    [
        {"events": ()},
        {"links": (Link(context=SpanContext(trace_id="1", span_id="2")),)},
        {"attributes": attrs.make_class("Odd", {})()},
    ],
)
def test_unusual_parts_are_kept_as_the_object_itself(change: Dict[str, Any]) -> None:
    span = attrs.evolve(plain_span(), **change)
    packed = pack_span(span)
    assert unpack_span(packed) is span


def test_span_subclass_is_kept_as_is() -> None:
    @attrs.define(kw_only=True)
    class MySpan(Span):
        flavour: str = "x"

    span = MySpan(**{a.name: getattr(plain_span(), a.name) for a in attrs.fields(Span)})
    assert unpack_span(pack_span(span)) is span


def test_packed_spans_leave_the_young_generations_untracked() -> None:
    # the reason for packing: kept spans must not be walked by every full collection
    enabled = gc.isenabled()
    gc.disable()  # no automatic collection in between: it could move a span to the old generation half-untracked
    try:
        packed = [pack_span(plain_span(i)) for i in range(50)]
        gc.collect(0)
        gc.collect(1)
        assert not any(gc.is_tracked(p) for p in packed)
    finally:
        if enabled:
            gc.enable()


_atoms = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
_dicts = st.dictionaries(st.text(max_size=6), st.one_of(_atoms, st.lists(_atoms, max_size=3)), max_size=4)


@settings(max_examples=60, deadline=None)
@given(
    attributes=_dicts,
    extras=_dicts,
    resource=_dicts,
    events=st.lists(st.tuples(st.text(max_size=4), _dicts), max_size=2),
    parent=st.one_of(st.none(), st.text(min_size=1, max_size=16)),
    code=st.sampled_from(["UNSET", "OK", "ERROR"]),
)
def test_round_trip_property(
    attributes: Dict[str, Any],
    extras: Dict[str, Any],
    resource: Dict[str, Any],
    events: List[Any],
    parent: Any,
    code: str,
) -> None:
    span = attrs.evolve(
        plain_span(),
        attributes=attributes,
        extras=extras,
        resource=OtelResource(attributes=resource),
        events=[Event(name=n, attributes=a) for n, a in events],
        parent=None if parent is None else SpanContext(trace_id="t", span_id=parent),
        status=TraceStatus(status_code=code),  # type: ignore[arg-type]
    )
    assert unpack_span(pack_span(span)) == span


@pytest.mark.anyio
async def test_store_reads_return_fresh_equal_spans(anyio_backend: str) -> None:
    store = InMemoryLightningStore(watchdog_interval=None)
    try:
        [rollout] = await store.enqueue_many_rollouts([EnqueueRolloutRequest(input={})])
        claimed = await store.dequeue_rollout()
        assert claimed is not None
        spans = [attrs.evolve(rich_span(), rollout_id=rollout.rollout_id, attempt_id=claimed.attempt.attempt_id)]
        spans.append(plain_span(2))
        spans[1].rollout_id, spans[1].attempt_id = rollout.rollout_id, claimed.attempt.attempt_id
        await store.add_many_spans(spans)
        first = (await store.query_spans(rollout.rollout_id)).items
        assert list(first) == sorted(spans, key=lambda s: s.sequence_id)
        first[0].attributes.clear()
        again = (await store.query_spans(rollout.rollout_id)).items
        assert list(again) == sorted(spans, key=lambda s: s.sequence_id)
        with pytest.raises(NotFoundError):
            await store.add_span(attrs.evolve(plain_span(3), rollout_id="ro-missing"))
    finally:
        await store.close()


def test_spans_with_the_same_attribute_names_share_one_keys_tuple() -> None:
    first, second = pack_span(plain_span(1)), pack_span(plain_span(2))
    keys = [v for v in first if type(v) is tuple and v == ("k", "n", "f", "b", "none")]
    assert keys and any(v is keys[0] for v in second)  # one shared tuple of names
    assert unpack_span(first) == plain_span(1) and unpack_span(second) == plain_span(2)


def test_keys_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentlightning_memory import packing

    monkeypatch.setattr(packing, "_keys", {})
    monkeypatch.setattr(packing, "_KEY_CACHE_SIZE", 3)
    spans = [plain_span(i, **{f"name{i}": i}) for i in range(10)]
    packed = [pack_span(s) for s in spans]
    assert len(packing._keys) == 3
    assert [unpack_span(p) for p in packed] == spans


@pytest.mark.anyio
async def test_span_keys_tell_attempts_and_id_types_apart(anyio_backend: str) -> None:
    from agentlightning_memory.backend import _span_key

    assert _span_key("a\0b", "c") != _span_key("a", "b\0c")  # a NUL in an attempt id falls back to a tuple
    assert _span_key("a", 1) == ("a", 1) and _span_key("a", "1") != _span_key("a", 1)
    store = InMemoryLightningStore(watchdog_interval=None)
    try:
        [rollout] = await store.enqueue_many_rollouts([EnqueueRolloutRequest(input={})])
        first = await store.dequeue_rollout()
        assert first is not None
        await store.update_attempt(rollout.rollout_id, first.attempt.attempt_id, status="failed")
        second = await store.start_attempt(rollout.rollout_id)

        def span(attempt_id: str, seq: int, span_id: Any) -> Span:
            return attrs.evolve(plain_span(seq), rollout_id=rollout.rollout_id, attempt_id=attempt_id, span_id=span_id)

        a1, a2 = first.attempt.attempt_id, second.attempt.attempt_id
        added = await store.add_many_spans([span(a1, 1, "s"), span(a2, 2, "s"), span(a2, 3, 7), span(a2, 4, "7")])
        assert len(added) == 4  # the same span id in two attempts, and an int id beside its string form
        assert await store.add_span(span(a2, 5, 7)) is None  # a duplicate of the int id
        assert await store.add_span(span(a1, 6, "s")) is None
        got = (await store.query_spans(rollout.rollout_id)).items
        assert [(s.attempt_id, s.span_id) for s in got] == [(a1, "s"), (a2, "s"), (a2, 7), (a2, "7")]
        assert [s.span_id for s in (await store.query_spans(rollout.rollout_id, a2)).items] == ["s", 7, "7"]
    finally:
        await store.close()


def test_shared_names_are_plain_strings_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1 == True: a shared tuple of non-string keys would give a later span an earlier span's keys
    from agentlightning_memory import packing

    monkeypatch.setattr(packing, "_keys", {})
    first, second = plain_span(1), plain_span(2)
    first.attributes, second.attributes = {1: "x"}, {True: "x"}
    first.resource.attributes, second.resource.attributes = {0: "r"}, {False: "r"}
    packed = [pack_span(first), pack_span(second)]
    again = [unpack_span(p) for p in packed]
    assert [type(k) for s in again for k in s.attributes] == [int, bool]
    assert [type(k) for s in again for k in s.resource.attributes] == [int, bool]
    assert again == [first, second]


def test_a_span_adds_one_tuple_for_the_collector() -> None:
    # the resource's attributes are spread into the packed tuple like the span's own: their names are shared, so
    # packing a span allocates nothing else the collector counts (three more tuples per span made young collections
    # three times as frequent)
    span = plain_span(1)
    span.resource.attributes = {"service.name": "svc", "telemetry.sdk.language": "python"}
    pack_span(span)  # the names are shared from now on
    enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        before = gc.get_count()[0]
        packed = [pack_span(span) for _ in range(100)]
        assert gc.get_count()[0] - before < 100 + 10  # one tuple per span (and the comprehension's few objects)
    finally:
        if enabled:
            gc.enable()
    assert all(unpack_span(p) == span for p in packed)
