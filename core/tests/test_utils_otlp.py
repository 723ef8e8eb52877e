"""OTLP through the official protobuf classes: real exporter output, OTLP/JSON, spans back to OTLP, bad bodies."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Sequence, Tuple

import anyio
import pytest
from agentlightning.types.tracer import Event, Link, OtelResource, Span, SpanContext, TraceStatus
from agentlightning.utils.otlp import (
    JSON,
    PROTOBUF,
    OTLPDecodeError,
    count_spans,
    export_request,
    export_request_from_json,
    export_request_to_json,
    parse_export_request,
    spans_from_proto,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def _issuer(start: int = 100) -> Any:
    calls: List[List[Tuple[str, str]]] = []

    async def issue(ids: List[Tuple[str, str]]) -> Sequence[int]:
        calls.append(list(ids))
        return list(range(start, start + len(ids)))

    issue.calls = calls  # type: ignore[attr-defined]
    return issue


def _decode(body: bytes, content_type: str = PROTOBUF) -> List[Span]:
    request = parse_export_request(body, content_type)
    return anyio.run(spans_from_proto, request, _issuer())


def test_real_exporter_output_becomes_the_same_spans_as_the_sdk_spans() -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Link as OtelLink
    from opentelemetry.trace import Status, StatusCode

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"agentlightning.rollout_id": "ro-1", "service.name": "t"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("outer", attributes={"agentlightning.attempt_id": "at-1"}) as outer:
        with tracer.start_as_current_span(
            "inner",
            attributes={"agentlightning.attempt_id": "at-1", "agentlightning.span_sequence_id": 7, "n": 3},
            links=[OtelLink(outer.get_span_context(), {"why": "x"})],
        ) as inner:
            inner.set_attribute("tags", ["a", "b"])
            inner.set_attribute("ok", True)
            inner.add_event("ev", {"f": 1.5})
            inner.set_status(Status(StatusCode.ERROR, "boom"))
    with tracer.start_as_current_span("untagged", attributes={"agentlightning.attempt_id": ""}):
        pass
    sdk_spans = exporter.get_finished_spans()
    body = encode_spans(sdk_spans).SerializeToString()

    request = parse_export_request(body, PROTOBUF)
    assert count_spans(request) == 3
    issue = _issuer(100)
    spans = anyio.run(spans_from_proto, request, issue)
    assert [s.name for s in spans] == ["inner", "outer"]  # the untagged span is left out
    assert issue.calls == [[("ro-1", "at-1")]]  # one call, for the span without a sequence id
    for span, sdk in zip(spans, sdk_spans):
        expected = Span.from_opentelemetry(sdk, "ro-1", "at-1", 7 if sdk.name == "inner" else 100)
        expected.parent = None  # OTLP carries the parent's span id only (parent_id)
        expected.resource.schema_url = ""
        assert span == expected


def test_otlp_json_reads_as_the_protobuf_does() -> None:
    body = {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "agentlightning.rollout_id", "value": {"stringValue": "ro"}}]},
            "scopeSpans": [{"spans": [{
                "traceId": "0f" * 16, "spanId": "0e" * 8, "parentSpanId": "0102030405060708", "name": "js",
                "startTimeUnixNano": "1700000002000000000", "endTimeUnixNano": "1700000003000000000",
                "status": {"code": "STATUS_CODE_ERROR", "message": "boom"}, "unknownKey": 1,
                "attributes": [
                    {"key": "agentlightning.attempt_id", "value": {"stringValue": "at"}},
                    {"key": "agentlightning.span_sequence_id", "value": {"intValue": "50"}},
                    {"key": "kv",
                     "value": {"kvlistValue": {"values": [{"key": "x", "value": {"bytesValue": "AQI="}}]}}},
                ],
                "links": [{"traceId": "01" * 16, "spanId": "02" * 8}],
            }]}],
        }]
    }  # fmt: skip
    [span] = _decode(json.dumps(body).encode(), JSON)
    assert (span.trace_id, span.span_id, span.parent_id) == ("0f" * 16, "0e" * 8, "0102030405060708")
    assert span.sequence_id == 50 and span.status == TraceStatus(status_code="ERROR", description="boom")
    assert span.attributes["kv"] == {"x": "0102"} and span.start_time == pytest.approx(1_700_000_002.0)
    assert span.links[0].context.span_id == "02" * 8
    request = export_request_from_json(body)
    assert export_request_from_json(export_request_to_json(request)) == request
    assert _decode(request.SerializeToString()) == [span]


_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.one_of(st.integers(min_value=0, max_value=9), st.text(max_size=3)), max_size=3),
)
_attrs = st.dictionaries(st.text(min_size=1, max_size=6), _values, max_size=4)
_hex16 = st.binary(min_size=8, max_size=8).map(bytes.hex)


@settings(max_examples=50, deadline=None)
@given(
    attributes=_attrs,
    event_attributes=_attrs,
    span_id=_hex16,
    parent_id=st.one_of(st.none(), _hex16),
    code=st.sampled_from(["UNSET", "OK", "ERROR"]),
    times=st.tuples(st.integers(1, 2**40), st.integers(1, 2**40)),
)
def test_spans_survive_a_trip_through_otlp(
    attributes: Dict[str, Any], event_attributes: Dict[str, Any], span_id: str, parent_id: Any, code: str, times: Any
) -> None:
    trace_id = "ab" * 16
    span = Span(
        rollout_id="ro",
        attempt_id="at",
        sequence_id=4,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name="s",
        status=TraceStatus(status_code=code, description="d" if code == "ERROR" else None),  # type: ignore[arg-type]
        attributes=attributes,
        events=[Event(name="e", attributes=event_attributes, timestamp=times[0] / 1e3)],
        links=[Link(context=SpanContext(trace_id=trace_id, span_id="cd" * 8, trace_state={"k": "v"}))],
        start_time=times[0] / 1e3,
        end_time=times[1] / 1e3,
        context=SpanContext(trace_id=trace_id, span_id=span_id),
        parent=None,
        resource=OtelResource(attributes={"r": 1}),
    )
    ids = {"agentlightning.rollout_id": "ro", "agentlightning.attempt_id": "at", "agentlightning.span_sequence_id": 4}
    request = export_request([({"r": 1, **ids}, [span])])
    [back] = _decode(request.SerializeToString())
    for name in ("start_time", "end_time"):
        assert getattr(back, name) == pytest.approx(getattr(span, name), abs=1e-6)
        setattr(back, name, getattr(span, name))
    back.events[0].timestamp = span.events[0].timestamp
    back.resource = span.resource
    assert back == span


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"\xff\xff\xff", PROTOBUF, "malformed OTLP protobuf body"),
        (b"{not json", JSON, "malformed OTLP JSON body"),
        (b"[1, 2]", JSON, "must be an object"),
        (b'{"resourceSpans": 5}', JSON, "resourceSpans must be a list"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', JSON, "traceId 'zz'"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}', JSON, "malformed OTLP JSON body"),
        (b"", "text/plain", "unsupported OTLP content type"),
    ],
)
def test_bad_bodies_say_what_is_wrong(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(OTLPDecodeError, match=message):
        parse_export_request(body, content_type)


def test_empty_bodies_are_empty_requests() -> None:
    assert count_spans(parse_export_request(b"", PROTOBUF)) == 0
    assert count_spans(parse_export_request(b"  ", JSON)) == 0
