"""Every model survives object -> JSON -> object, and bad data gets an error naming the field."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from agentlightning.types import (
    ATTEMPT_STATUSES,
    LLM,
    ROLLOUT_STATUSES,
    WORKER_STATUSES,
    Attempt,
    AttemptedRollout,
    EnqueueRolloutRequest,
    Event,
    Link,
    OtelResource,
    PaginatedResult,
    PromptTemplate,
    ProxyLLM,
    ResourcesUpdate,
    Rollout,
    RolloutConfig,
    Span,
    SpanContext,
    TraceStatus,
    Triplet,
    ValidationError,
    Worker,
    from_dict,
    from_json,
    resources_from_dict,
    resources_to_dict,
    rollout_from_dict,
    to_dict,
    to_json,
)
from hypothesis import given, settings
from hypothesis import strategies as st

text = st.text(max_size=12)
ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12)
times = st.one_of(st.none(), st.floats(min_value=0, max_value=4e9, allow_nan=False))
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False), text
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)
metadata = st.one_of(st.none(), st.dictionaries(text, json_value, max_size=3))
attr_values = st.one_of(text, st.booleans(), st.integers(-1000, 1000), st.lists(text, max_size=3))
attributes = st.dictionaries(text, attr_values, max_size=4)

configs = st.builds(
    RolloutConfig,
    timeout_seconds=times,
    unresponsive_seconds=times,
    max_attempts=st.integers(1, 10),
    retry_condition=st.lists(st.sampled_from(ATTEMPT_STATUSES), max_size=3),
)
rollouts = st.builds(
    Rollout,
    rollout_id=ids,
    input=json_value,
    start_time=st.floats(0, 4e9),
    end_time=times,
    mode=st.sampled_from([None, "train", "val", "test"]),
    resources_id=st.one_of(st.none(), ids),
    status=st.sampled_from(ROLLOUT_STATUSES),
    config=configs,
    metadata=metadata,
)
attempts = st.builds(
    Attempt,
    rollout_id=ids,
    attempt_id=ids,
    sequence_id=st.integers(1, 100),
    start_time=st.floats(0, 4e9),
    end_time=times,
    status=st.sampled_from(ATTEMPT_STATUSES),
    worker_id=st.one_of(st.none(), ids),
    last_heartbeat_time=times,
    metadata=metadata,
)


@st.composite
def attempted_rollouts(draw: Any) -> AttemptedRollout:
    rollout = draw(rollouts)
    attempt = attrs.evolve(draw(attempts), rollout_id=rollout.rollout_id)
    return AttemptedRollout.of(rollout, attempt)


contexts = st.builds(
    SpanContext, trace_id=ids, span_id=ids, is_remote=st.booleans(), trace_state=st.dictionaries(text, text, max_size=2)
)
extras = st.dictionaries(
    st.text(alphabet="xyz", min_size=1, max_size=4).map(lambda k: "x_" + k), json_value, max_size=2
)
spans = st.builds(
    Span,
    rollout_id=ids,
    attempt_id=ids,
    sequence_id=st.integers(0, 1000),
    trace_id=ids,
    span_id=ids,
    parent_id=st.one_of(st.none(), ids),
    name=text,
    status=st.builds(
        TraceStatus, status_code=st.sampled_from(["UNSET", "OK", "ERROR"]), description=st.one_of(st.none(), text)
    ),
    attributes=attributes,
    events=st.lists(st.builds(Event, name=text, attributes=attributes, timestamp=times), max_size=2),
    links=st.lists(st.builds(Link, context=contexts, attributes=st.one_of(st.none(), attributes)), max_size=2),
    start_time=times,
    end_time=times,
    context=st.one_of(st.none(), contexts),
    parent=st.one_of(st.none(), contexts),
    resource=st.builds(OtelResource, attributes=attributes, schema_url=text),
    extras=extras,
)
resources = st.one_of(
    st.builds(
        LLM,
        endpoint=text,
        model=text,
        api_key=st.one_of(st.none(), text),
        sampling_parameters=st.dictionaries(text, json_scalar, max_size=2),
    ),
    st.builds(ProxyLLM, endpoint=text, model=text),
    st.builds(PromptTemplate, template=text, engine=st.sampled_from(["f-string", "jinja", "poml"])),
)
updates = st.builds(
    ResourcesUpdate,
    resources_id=ids,
    create_time=st.floats(0, 4e9),
    update_time=st.floats(0, 4e9),
    version=st.integers(1, 50),
    resources=st.dictionaries(text, resources, max_size=3),
)
workers = st.builds(
    Worker,
    worker_id=ids,
    status=st.sampled_from(WORKER_STATUSES),
    heartbeat_stats=metadata,
    last_heartbeat_time=times,
    last_dequeue_time=times,
    current_rollout_id=st.one_of(st.none(), ids),
)
MODELS = [
    (Rollout, rollouts),
    (Attempt, attempts),
    (AttemptedRollout, attempted_rollouts()),
    (RolloutConfig, configs),
    (Span, spans),
    (ResourcesUpdate, updates),
    (Worker, workers),
    (
        Triplet,
        st.builds(
            Triplet,
            prompt=json_value,
            response=json_value,
            reward=st.one_of(st.none(), st.floats(-1, 1)),
            metadata=st.dictionaries(text, json_value, max_size=2),
        ),
    ),
    (
        EnqueueRolloutRequest,
        st.builds(
            EnqueueRolloutRequest,
            input=json_value,
            mode=st.sampled_from([None, "train"]),
            config=st.one_of(st.none(), configs),
            metadata=metadata,
        ),
    ),
]


@pytest.mark.parametrize(("cls", "strategy"), MODELS, ids=[m[0].__name__ for m in MODELS])
@settings(deadline=None)  # no timing assertion: a first example on a loaded machine took 280 ms, the next 6 ms
@given(data=st.data())
def test_round_trip_through_json(cls: type, strategy: Any, data: Any) -> None:
    obj = data.draw(strategy)
    wire = json.loads(to_json(obj))
    assert from_json(json.dumps(wire), cls) == obj
    assert to_dict(from_dict(wire, cls)) == wire


@given(updates)
def test_named_resources_are_discriminated_by_resource_type(update: ResourcesUpdate) -> None:
    wire = resources_to_dict(update.resources)
    assert resources_from_dict(wire) == update.resources
    for value in wire.values():
        assert value["resource_type"] in {"llm", "proxy_llm", "prompt_template"}


@given(attempted_rollouts(), rollouts)
def test_attempted_rollout_wire_is_rollout_plus_attempt(attempted: AttemptedRollout, plain: Rollout) -> None:
    wire = to_dict(attempted)
    assert set(wire) == {a.name for a in attrs.fields(Rollout)} | {"attempt"}
    assert rollout_from_dict(wire) == attempted
    assert type(rollout_from_dict(to_dict(plain))) is Rollout


def test_unknown_span_fields_survive() -> None:
    span = Span.from_attributes(attributes={"a": 1}, rollout_id="ro-1", attempt_id="at-1", sequence_id=3)
    wire = to_dict(span)
    wire["vendor_field"] = {"kept": True}
    wire["status"]["vendor_status"] = 1
    wire["context"]["vendor_ctx"] = "x"
    back = to_dict(from_dict(wire, Span))
    assert back["vendor_field"] == {"kept": True}
    assert back["status"]["vendor_status"] == 1 and back["context"]["vendor_ctx"] == "x"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "done"}, "Rollout.status"),
        ({"config": {"max_attempts": 0}}, "max_attempts"),
        ({"config": {"retry_condition": ["queuing"]}}, "retry_condition"),
        ({"start_time": "yesterday"}, "Rollout.start_time"),
        ({"rollout_id": 7}, "Rollout.rollout_id"),
        ({"mode": "training"}, "Rollout.mode"),
    ],
)
def test_invalid_rollout_names_the_field(change: dict, field: str) -> None:
    wire = to_dict(Rollout(rollout_id="ro-1", input=None, start_time=1.0))
    wire.update(change)
    with pytest.raises(ValidationError, match=field.replace(".", r"\.")):
        from_dict(wire, Rollout)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="max_attempts must be an integer >= 1"):
        RolloutConfig(max_attempts=0)
    with pytest.raises(ValueError, match="Attempt.status"):
        Attempt(rollout_id="r", attempt_id="a", sequence_id=1, start_time=0, status="queuing")  # type: ignore[arg-type]
    rollout = Rollout(rollout_id="ro-a", input=None, start_time=0)
    other = Attempt(rollout_id="ro-b", attempt_id="at", sequence_id=1, start_time=0)
    with pytest.raises(ValueError, match="Inconsistent rollout_id"):
        AttemptedRollout.of(rollout, other)
    with pytest.raises(ValidationError, match="Inconsistent rollout_id"):
        from_dict({**to_dict(rollout), "attempt": to_dict(other)}, AttemptedRollout)


def test_malformed_json_and_unknown_resource_type() -> None:
    with pytest.raises(ValidationError, match="malformed JSON"):
        from_json("{not json", Rollout)
    with pytest.raises(ValidationError, match=r"resource_type: 'gpu' is not one of"):
        resources_from_dict({"x": {"resource_type": "gpu"}})
    with pytest.raises(ValidationError, match=r"NamedResources\['llm'\].*model"):
        resources_from_dict({"llm": {"resource_type": "llm", "endpoint": "http://x"}})


def test_proxy_llm_urls() -> None:
    proxy = ProxyLLM(endpoint="http://h:11434/v1/", model="m", api_key="k", sampling_parameters={"t": 1})
    assert proxy.get_base_url("ro", "at") == "http://h:11434/rollout/ro/attempt/at/v1"
    assert (
        ProxyLLM(endpoint="http://h:11434", model="m").get_base_url("ro", "at")
        == "http://h:11434/rollout/ro/attempt/at"
    )
    assert proxy.get_base_url() == "http://h:11434/v1/"
    with pytest.raises(ValueError, match="must be strings"):
        proxy.get_base_url("ro", None)
    attempted = AttemptedRollout.of(
        Rollout(rollout_id="ro", input=None, start_time=0),
        Attempt(rollout_id="ro", attempt_id="at", sequence_id=1, start_time=0),
    )
    llm = proxy.with_attempted_rollout(attempted)
    assert type(llm) is LLM and llm.endpoint.endswith("/rollout/ro/attempt/at/v1") and llm.api_key == "k"


def test_prompt_template_engines() -> None:
    assert PromptTemplate(template="Hi {name}", engine="f-string").format(name="A") == "Hi A"
    assert PromptTemplate(template="Hi {name} {x.y}").placeholders() == {"name", "x"}
    with pytest.raises(NotImplementedError):
        PromptTemplate(template="<p/>", engine="poml").format()
    with pytest.raises(ValueError, match="engine"):
        PromptTemplate(template="x", engine="mustache")  # type: ignore[arg-type]


def test_jinja_template() -> None:
    pytest.importorskip("jinja2")
    tpl = PromptTemplate(template="Hi {{ name }}", engine="jinja")
    assert tpl.format(name="B") == "Hi B"
    assert tpl.placeholders() == {"name"}


def test_paginated_result_is_a_sequence() -> None:
    page = PaginatedResult(items=["a", "b", "c"], limit=3, offset=0, total=5)
    assert list(page) == ["a", "b", "c"] and len(page) == 3 and page[1] == "b" and page[1:] == ["b", "c"]
    assert repr(page) == "<PaginatedResult (0:3 of 5) ['a', ...]>"  # upstream's form: the slice served
    assert repr(PaginatedResult(items=[], limit=-1, offset=0, total=0)) == "<PaginatedResult (0: of 0) empty>"
    assert repr(PaginatedResult(items=["b"], limit=1, offset=1, total=5)) == "<PaginatedResult (1:2 of 5) 'b'>"
    assert to_dict(page) == {"items": ["a", "b", "c"], "limit": 3, "offset": 0, "total": 5}


def test_span_from_attributes_defaults() -> None:
    span = Span.from_attributes(attributes={"k": "v"})
    assert len(span.trace_id) == 32 and len(span.span_id) == 16
    assert (span.rollout_id, span.attempt_id, span.sequence_id, span.name) == ("", "", 0, "agentlightning.virtual")
    assert span.status.status_code == "OK" and span.parent is None
    child = Span.from_attributes(attributes={}, parent_id="ab" * 8, trace_id=span.trace_id)
    assert child.parent is not None and child.parent.span_id == "ab" * 8


def test_span_from_attributes_builds_what_the_constructors_build() -> None:
    # from_attributes skips keyword parsing for Span itself: the result must equal the plain constructors' and
    # serialize identically
    span = Span.from_attributes(
        attributes={"k": "v"}, rollout_id="r", attempt_id="a", sequence_id=3, name="n", trace_id="t" * 32,
        span_id="s" * 16, parent_id="p" * 16, start_time=1.0, end_time=2.0,
    )  # fmt: skip
    expected = Span(
        rollout_id="r",
        attempt_id="a",
        sequence_id=3,
        trace_id="t" * 32,
        span_id="s" * 16,
        parent_id="p" * 16,
        name="n",
        status=TraceStatus(status_code="OK"),
        attributes={"k": "v"},
        events=[],
        links=[],
        start_time=1.0,
        end_time=2.0,
        context=SpanContext(trace_id="t" * 32, span_id="s" * 16, is_remote=False),
        parent=SpanContext(trace_id="t" * 32, span_id="p" * 16, is_remote=False),
        resource=OtelResource(attributes={}, schema_url=""),
    )
    assert span == expected and to_dict(span) == to_dict(expected)
    assert span.status is not Span.from_attributes(attributes={}).status  # nothing shared between spans
    with pytest.raises(ValueError, match="status_code"):
        span.status.status_code = "BAD"  # type: ignore[assignment]  # the fast-built status still validates

    @attrs.define(kw_only=True)
    class Tagged(Span):
        tag: str = "t"

    tagged = Tagged.from_attributes(attributes={"k": "v"})
    assert isinstance(tagged, Tagged) and tagged.tag == "t"


def test_span_from_opentelemetry() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("parent"):
        with tracer.start_as_current_span("child", attributes={"xs": (1, 2)}) as otel_span:
            otel_span.add_event("e", {"a": 1})
    span = Span.from_opentelemetry(otel_span, "ro", "at", 4)  # type: ignore[arg-type]
    assert span.name == "child" and span.attributes == {"xs": [1, 2]} and span.parent_id is not None
    assert span.events[0].name == "e" and span.start_time is not None and span.start_time < 1e12
    assert from_dict(to_dict(span), Span) == span


def test_span_from_opentelemetry_takes_an_object_standing_for_a_readable_span() -> None:
    from types import SimpleNamespace

    class StandIn(SimpleNamespace):
        def get_span_context(self) -> Any:
            return SimpleNamespace(trace_id=0xABC, span_id=0x12, is_remote=False, trace_state={})

        def __getattr__(self, name: str) -> Any:  # answers anything, as a test double does
            return SimpleNamespace(name=f"auto {name}")

    stand_in = StandIn(
        name="double", parent=None, attributes={"k": "v"}, events=[], links=[], start_time=1_700_000_000_000_000_000,
        end_time=1_700_000_001_000_000_000, resource=SimpleNamespace(attributes={"service.name": "t"}, schema_url=""),
        status=SimpleNamespace(status_code=SimpleNamespace(name="OK"), description=None),
    )  # fmt: skip
    span = Span.from_opentelemetry(stand_in, "ro", "at", 1)  # type: ignore[arg-type]
    assert (span.name, span.attributes, span.status.status_code) == ("double", {"k": "v"}, "OK")
    assert (
        span.span_id == "0000000000000012"
        and span.start_time == 1.7e9
        and span.resource.attributes == {"service.name": "t"}
    )


_ids = st.integers(min_value=1, max_value=2**64 - 1)
_states = st.dictionaries(st.sampled_from(["a", "b", "vendor"]), st.sampled_from(["1", "x"]), max_size=2).map(
    lambda pairs: list(pairs.items())
)


@settings(max_examples=60, deadline=None)
@given(
    trace=st.one_of(_ids, st.integers(min_value=1, max_value=2**128 - 1)),
    span_id=_ids,
    parent=st.one_of(st.none(), st.tuples(st.one_of(st.none(), _ids), _ids, st.booleans(), _states)),
    state=_states,
    attributes=st.dictionaries(
        st.sampled_from(["k", "n", "xs", "flag"]),
        st.one_of(st.text(max_size=3), st.integers(), st.booleans(), st.tuples(st.integers(), st.integers())),
    ),
    bounded=st.booleans(),
)
def test_span_from_opentelemetry_ids_states_and_attributes(
    trace: int, span_id: int, parent: Any, state: Any, attributes: Any, bounded: bool
) -> None:
    """Ids (also a trace id equal to a span id, and ids recurring across spans), trace states (empty ones first)
    and attributes (plain dicts and the SDK's bounded ones, with tuples) convert as formatted one by one."""
    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext as OtelContext
    from opentelemetry.trace import TraceFlags, TraceState

    def context(trace_id: int, span: int, remote: bool, pairs: Any) -> Any:
        return OtelContext(trace_id, span, remote, TraceFlags(1), TraceState(pairs) if pairs else None)

    own = context(trace, span_id, False, state)
    parent_ctx = None if parent is None else context(parent[0] or trace, parent[1], parent[2], parent[3])
    held = BoundedAttributes(attributes=attributes, immutable=False) if bounded else dict(attributes)
    src = ReadableSpan("s", context=own, parent=parent_ctx, attributes=held, start_time=1, end_time=2)
    spans = []
    for _ in range(2):  # the second time from the caches
        span = Span.from_opentelemetry(src, "ro", "at", 1)  # type: ignore[arg-type]
        spans.append(span)
        assert (span.trace_id, span.span_id) == (f"{trace:032x}", f"{span_id:016x}")
        assert span.context is not None and span.context.trace_state == dict(state)
        assert span.attributes == {k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()}
        if parent_ctx is None:
            assert span.parent is None and span.parent_id is None
        else:
            assert span.parent is not None and span.parent_id == f"{parent[1]:016x}" == span.parent.span_id
            assert span.parent.trace_id == f"{parent[0] or trace:032x}" and span.parent.is_remote is parent[2]
            assert span.parent.trace_state == dict(parent[3])
        assert from_dict(to_dict(span), Span) == span
    # each conversion owns its mutable parts: changing one changes neither the other nor the OpenTelemetry span
    first, second = spans
    assert first.context is not None and second.context is not None
    first.attributes["added"] = 1
    first.context.trace_state["added"] = "1"
    first.resource.attributes["added"] = 1
    assert "added" not in second.attributes and "added" not in held
    assert "added" not in second.context.trace_state and "added" not in second.resource.attributes


def test_span_from_opentelemetry_every_field() -> None:
    """Links, trace state, an error status, the resource and a span without context, field by field."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.trace import Link as OtelLink
    from opentelemetry.trace import SpanContext as OtelContext
    from opentelemetry.trace import Status, StatusCode, TraceFlags, TraceState

    remote = OtelContext(0xAB, 0xCD, True, TraceFlags(1), TraceState([("vendor", "v1")]))
    first = TracerProvider(resource=Resource({"service.name": "one", "tags": ("a", "b")}, "https://schema/1"))
    second = TracerProvider(resource=Resource({"service.name": "two"}))
    with first.get_tracer("t").start_as_current_span("root") as root:
        with first.get_tracer("t").start_as_current_span("child", links=[OtelLink(remote, {"why": "x"})]) as child:
            child.set_status(Status(StatusCode.ERROR, "failed"))
            child.add_event("retry", {"n": 2}, timestamp=1_700_000_000_500_000_000)
    with second.get_tracer("t").start_as_current_span("other") as other:
        pass
    root_span = Span.from_opentelemetry(root, "ro", "at", 1)  # type: ignore[arg-type]
    child_span = Span.from_opentelemetry(child, "ro", "at", 2)  # type: ignore[arg-type]
    other_span = Span.from_opentelemetry(other, "ro", "at", 3)  # type: ignore[arg-type]
    ctx = child.get_span_context()
    assert child_span.trace_id == f"{ctx.trace_id:032x}" and child_span.span_id == f"{ctx.span_id:016x}"
    assert child_span.parent_id == root_span.span_id and child_span.parent is not None
    assert child_span.parent.span_id == root_span.span_id and child_span.parent.trace_id == child_span.trace_id
    assert child_span.context is not None and child_span.context.trace_id == child_span.trace_id
    assert (child_span.status.status_code, child_span.status.description) == ("ERROR", "failed")
    assert root_span.status.status_code == "UNSET"
    assert child_span.events[0].timestamp == 1_700_000_000.5 and child_span.events[0].attributes == {"n": 2}
    link = child_span.links[0]
    assert (link.context.trace_id, link.context.span_id) == (f"{0xAB:032x}", f"{0xCD:016x}")
    assert link.context.is_remote and link.context.trace_state == {"vendor": "v1"} and link.attributes == {"why": "x"}
    assert child_span.resource.attributes["tags"] == ["a", "b"] and child_span.resource.schema_url == "https://schema/1"
    assert other_span.resource.attributes["service.name"] == "two" and other_span.resource.schema_url == ""
    # spans of one provider share its resource, but each owns its attributes dict
    assert root_span.resource.attributes == child_span.resource.attributes
    assert root_span.resource.attributes is not child_span.resource.attributes
    bare = Span.from_opentelemetry(ReadableSpan("bare"), "ro", "at", 4)  # type: ignore[arg-type]
    assert (bare.trace_id, bare.span_id, bare.context, bare.parent_id) == ("0" * 32, "0" * 16, None, None)

    @attrs.define(kw_only=True)
    class Tagged(Span):
        tag: str = "t"

    tagged = Tagged.from_opentelemetry(child, "ro", "at", 2)  # type: ignore[arg-type]
    assert isinstance(tagged, Tagged) and tagged.tag == "t" and to_dict(tagged)["span_id"] == child_span.span_id


def test_span_from_opentelemetry_statuses_one_after_another() -> None:
    """The status of each span, whether it repeats the previous span's status object or not (the converter keeps
    the last one's parts)."""
    from types import SimpleNamespace

    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Status, StatusCode

    error, ok = Status(StatusCode.ERROR, "boom"), Status(StatusCode.OK)
    double = SimpleNamespace(status_code=SimpleNamespace(name="ERROR"), description="double")
    sequence = [error, error, ok, None, error, Status(StatusCode.ERROR, "other"), double, double, ok]
    expected = [("ERROR", "boom"), ("ERROR", "boom"), ("OK", None), ("UNSET", None), ("ERROR", "boom")]
    expected += [("ERROR", "other"), ("ERROR", "double"), ("ERROR", "double"), ("OK", None)]
    for status, want in zip(sequence, expected, strict=True):
        src = ReadableSpan("s", status=status) if status is not None else ReadableSpan("s")
        if status is None:
            src._status = None  # type: ignore[assignment]
        span = Span.from_opentelemetry(src, "ro", "at", 1)  # type: ignore[arg-type]
        assert (span.status.status_code, span.status.description) == want


def test_span_from_opentelemetry_reads_readable_spans_directly_only_with_their_own_accessors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ``ReadableSpan`` (and a subclass keeping its accessors) is read from its attributes, with the same result as
    through the accessors; a subclass that overrides an accessor is read through it."""
    from agentlightning.types import tracer
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event as OtelEvent
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext as OtelContext
    from opentelemetry.trace import Status, StatusCode, TraceFlags

    class Kept(ReadableSpan):
        pass

    class Renamed(ReadableSpan):
        @property
        def name(self) -> str:
            return "renamed"

    def make(cls: Any) -> Any:
        return cls(
            "s",
            context=OtelContext(7, 8, False, TraceFlags(1)),
            parent=OtelContext(7, 9, True, TraceFlags(1)),
            resource=Resource({"service.name": "svc"}),
            attributes={"k": "v", "xs": (1, 2)},
            events=[OtelEvent("e", {"a": 1}, timestamp=5)],
            status=Status(StatusCode.ERROR, "bad"),
            start_time=1_700_000_000_000_000_000,
            end_time=1_700_000_001_000_000_000,
        )

    direct = [Span.from_opentelemetry(make(cls), "ro", "at", 1) for cls in (ReadableSpan, Kept)]
    assert tracer._PLAIN_READABLE[ReadableSpan] and tracer._PLAIN_READABLE[Kept]
    monkeypatch.setattr(tracer, "_PLAIN_READABLE", {ReadableSpan: False, Kept: False})
    through_accessors = Span.from_opentelemetry(make(ReadableSpan), "ro", "at", 1)
    assert direct == [through_accessors, through_accessors]
    assert through_accessors.attributes == {"k": "v", "xs": [1, 2]} and through_accessors.events[0].name == "e"
    monkeypatch.setattr(tracer, "_PLAIN_READABLE", {})
    assert Span.from_opentelemetry(make(Renamed), "ro", "at", 1).name == "renamed"
    assert tracer._PLAIN_READABLE[Renamed] is False
