"""OTLP traces to spans and back, through the official protobuf classes of ``opentelemetry-proto``.

``opentelemetry-proto`` is imported on first use (install ``agentlightning-core[otlp]``; the server and LiteLLM plugins
depend on it). Both OTLP/HTTP encodings are read: protobuf, and the OTLP/JSON mapping (camelCase keys, 64-bit integers
as strings, trace and span ids as hex where protobuf's own JSON mapping would use base64).

Rollout, attempt and sequence ids come from the span attributes ``agentlightning.rollout_id`` /
``agentlightning.attempt_id`` / ``agentlightning.span_sequence_id``, falling back to the same keys among the resource
attributes (upstream v0.3's ``spans_from_proto``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from agentlightning.types.tracer import Event, Link, OtelResource, Span, SpanContext, SpanNames, TraceStatus

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = [
    "PROTOBUF",
    "JSON",
    "OTLPDecodeError",
    "parse_export_request",
    "export_request_from_json",
    "export_request_to_json",
    "count_spans",
    "spans_from_proto",
    "export_request",
]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_STATUS_NAMES = ("UNSET", "OK", "ERROR")
_STATUS_CODES = {name: code for code, name in enumerate(_STATUS_NAMES)}
_ID_KEYS = ("traceId", "spanId", "parentSpanId")


class OTLPDecodeError(ValueError):
    """An OTLP body that cannot be read; the message says what is wrong (an HTTP 400, not a server error)."""


# -- bodies ----------------------------------------------------------------------------------------------------------


def parse_export_request(body: bytes, content_type: str = PROTOBUF) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` from an OTLP/HTTP body (``PROTOBUF`` or ``JSON``; an empty body is an empty
    request); raises :class:`OTLPDecodeError`."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    if content_type == JSON:
        if not body.strip():
            return ExportTraceServiceRequest()
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise OTLPDecodeError(f"malformed OTLP JSON body: {exc}") from None
        return export_request_from_json(data)
    if content_type != PROTOBUF:
        raise OTLPDecodeError(f"unsupported OTLP content type {content_type!r}: use {PROTOBUF} or {JSON}")
    from google.protobuf.message import DecodeError

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise OTLPDecodeError(f"malformed OTLP protobuf body: {exc}") from None
    return request


def _convert_ids(data: Any, convert: Callable[[str], str], path: str) -> Any:
    """``data`` (OTLP/JSON) with the span and link ids of every span converted by ``convert`` (copies what it
    changes)."""
    if not isinstance(data, Mapping):
        raise OTLPDecodeError(f"malformed OTLP JSON body: {path} must be an object, got {type(data).__name__}")
    out = dict(data)
    for key in _ID_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value:
            try:
                out[key] = convert(value)
            except (ValueError, binascii.Error) as exc:
                raise OTLPDecodeError(f"malformed OTLP JSON body: {path}.{key} {value!r}: {exc}") from None
    return out


def _map_spans(data: Any, convert: Callable[[str], str]) -> Any:
    def each(items: Any, path: str, inner: Callable[[Any, str], Any]) -> Any:
        if items is None:
            return None
        if not isinstance(items, list):
            raise OTLPDecodeError(f"malformed OTLP JSON body: {path} must be a list, got {type(items).__name__}")
        return [inner(item, f"{path}[{i}]") for i, item in enumerate(items)]

    def span(s: Any, path: str) -> Any:
        out = _convert_ids(s, convert, path)
        if "links" in out:
            out["links"] = each(out["links"], f"{path}.links", lambda link, p: _convert_ids(link, convert, p))
        return out

    def scope(ss: Any, path: str) -> Any:
        out = dict(_convert_ids(ss, convert, path))
        if "spans" in out:
            out["spans"] = each(out["spans"], f"{path}.spans", span)
        return out

    def resource(rs: Any, path: str) -> Any:
        out = dict(_convert_ids(rs, convert, path))
        if "scopeSpans" in out:
            out["scopeSpans"] = each(out["scopeSpans"], f"{path}.scopeSpans", scope)
        return out

    top = dict(_convert_ids(data, convert, "body"))
    if "resourceSpans" in top:
        top["resourceSpans"] = each(top["resourceSpans"], "resourceSpans", resource)
    return top


def _hex_to_base64(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _base64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def export_request_from_json(data: Any) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` from OTLP/JSON data (unknown keys ignored); raises
    :class:`OTLPDecodeError`."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(_map_spans(data, _hex_to_base64), request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OTLPDecodeError(f"malformed OTLP JSON body: {exc}") from None
    return request


def export_request_to_json(request: ExportTraceServiceRequest) -> Dict[str, Any]:
    """The OTLP/JSON form of ``request`` (hex ids)."""
    from google.protobuf import json_format

    return _map_spans(json_format.MessageToDict(request), _base64_to_hex)


# -- protobuf to spans -----------------------------------------------------------------------------------------------


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _attributes(attributes: Any) -> Dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in attributes}


def _hex(raw: bytes, width: int) -> str:
    return raw.hex().rjust(width, "0") if raw else "0" * width


def _seconds(nanos: int) -> Optional[float]:
    return nanos / 1e9 if nanos else None


def _trace_state(raw: str) -> Dict[str, str]:
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs}


def _sequence_id(value: Any) -> Optional[int]:
    """A usable sequence id (a non-negative int, or its decimal string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _lookup(key: str, span_attributes: Dict[str, Any], resource_attributes: Dict[str, Any]) -> Any:
    value = span_attributes.get(key)
    return resource_attributes.get(key) if value is None else value


def _span(s: Any, resource: OtelResource, attributes: Dict[str, Any], ids: Tuple[str, str], seq: int) -> Span:
    trace_id, span_id = _hex(s.trace_id, 32), _hex(s.span_id, 16)
    status = _STATUS_NAMES[s.status.code] if 0 <= s.status.code < len(_STATUS_NAMES) else "UNSET"
    return Span(
        rollout_id=ids[0],
        attempt_id=ids[1],
        sequence_id=seq,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=_hex(s.parent_span_id, 16) if s.parent_span_id else None,
        name=s.name,
        status=TraceStatus(status_code=status, description=s.status.message or None),  # type: ignore[arg-type]
        attributes=attributes,
        events=[
            Event(name=e.name, attributes=_attributes(e.attributes), timestamp=_seconds(e.time_unix_nano))
            for e in s.events
        ],
        links=[
            Link(
                context=SpanContext(
                    trace_id=_hex(link.trace_id, 32),
                    span_id=_hex(link.span_id, 16),
                    trace_state=_trace_state(link.trace_state),
                ),
                attributes=_attributes(link.attributes) or None,
            )
            for link in s.links
        ],
        start_time=_seconds(s.start_time_unix_nano),
        end_time=_seconds(s.end_time_unix_nano),
        context=SpanContext(trace_id=trace_id, span_id=span_id, trace_state=_trace_state(s.trace_state)),
        parent=None,
        resource=resource,
    )


def count_spans(request: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


async def spans_from_proto(
    request: ExportTraceServiceRequest,
    sequence_id_bulk_issuer: Callable[[List[Tuple[str, str]]], Awaitable[Sequence[int]]],
) -> List[Span]:
    """The request's spans that carry a rollout and an attempt id (the others are left out: compare with
    :func:`count_spans`); missing or invalid sequence ids are issued in one call to ``sequence_id_bulk_issuer`` (a
    store's ``get_many_span_sequence_ids``)."""
    tagged: List[Tuple[Any, OtelResource, Dict[str, Any], Tuple[str, str], Optional[int]]] = []
    for rs in request.resource_spans:
        resource = OtelResource(attributes=_attributes(rs.resource.attributes), schema_url=rs.schema_url)
        for ss in rs.scope_spans:
            for s in ss.spans:
                attributes = _attributes(s.attributes)
                rollout_id = _lookup(SpanNames.ROLLOUT_ID, attributes, resource.attributes)
                attempt_id = _lookup(SpanNames.ATTEMPT_ID, attributes, resource.attributes)
                if (
                    not isinstance(rollout_id, str)
                    or not isinstance(attempt_id, str)
                    or not rollout_id
                    or not attempt_id
                ):
                    continue
                seq = _sequence_id(_lookup(SpanNames.SPAN_SEQUENCE_ID, attributes, resource.attributes))
                tagged.append((s, resource, attributes, (rollout_id, attempt_id), seq))
    missing = [ids for *_, ids, seq in tagged if seq is None]
    fresh = iter(await sequence_id_bulk_issuer(missing) if missing else [])
    # each span gets its own copy of the resource (spans are mutable; the store keeps what it is given)
    return [
        _span(
            s,
            OtelResource(attributes=dict(r.attributes), schema_url=r.schema_url),
            a,
            ids,
            next(fresh) if seq is None else seq,
        )
        for s, r, a, ids, seq in tagged
    ]


# -- spans to protobuf -----------------------------------------------------------------------------------------------


def _any_value(value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValueList

    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value) if -(2**63) <= value < 2**63 else AnyValue(string_value=str(value))
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[_any_value(v) for v in value]))
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=_key_values(value)))
    return AnyValue(string_value=str(value))


def _key_values(attributes: Mapping[str, Any]) -> List[Any]:
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    return [KeyValue(key=str(k), value=_any_value(v)) for k, v in attributes.items()]


def _id(hex_id: Optional[str]) -> bytes:
    try:
        return bytes.fromhex(hex_id) if hex_id else b""
    except ValueError:
        return b""


def _nanos(seconds: Optional[float]) -> int:
    return round(seconds * 1e9) if seconds else 0


def _span_proto(span: Span, kind: int) -> Any:
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    def trace_state(context: Optional[SpanContext]) -> str:
        return ",".join(f"{k}={v}" for k, v in context.trace_state.items()) if context is not None else ""

    return ProtoSpan(
        trace_id=_id(span.trace_id),
        span_id=_id(span.span_id),
        parent_span_id=_id(span.parent_id),
        trace_state=trace_state(span.context),
        name=span.name,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=_nanos(span.start_time),
        end_time_unix_nano=_nanos(span.end_time),
        attributes=_key_values(span.attributes),
        events=[
            ProtoSpan.Event(name=e.name, time_unix_nano=_nanos(e.timestamp), attributes=_key_values(e.attributes))
            for e in span.events
        ],
        links=[
            ProtoSpan.Link(
                trace_id=_id(link.context.trace_id),
                span_id=_id(link.context.span_id),
                trace_state=trace_state(link.context),
                attributes=_key_values(link.attributes or {}),
            )
            for link in span.links
        ],
        status=Status(
            code=_STATUS_CODES[span.status.status_code],  # type: ignore[arg-type]
            message=span.status.description or "",
        ),
    )


def export_request(
    groups: Iterable[Tuple[Mapping[str, Any], Sequence[Span]]], scope_name: str = "agentlightning", kind: int = 1
) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` with one ``ResourceSpans`` per ``(resource attributes, spans)`` group
    (``kind``: the OTLP span kind of every span, 1 = internal, 3 = client)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=_key_values(attributes)),
                scope_spans=[
                    ScopeSpans(scope=InstrumentationScope(name=scope_name), spans=[_span_proto(s, kind) for s in spans])
                ],
            )
            for attributes, spans in groups
        ]
    )
