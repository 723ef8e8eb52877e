"""OTLP/HTTP trace ingestion: ``ExportTraceServiceRequest`` (protobuf or JSON) to stored spans.

Rollout, attempt and sequence ids come from the span attributes ``agentlightning.rollout_id`` /
``agentlightning.attempt_id`` / ``agentlightning.span_sequence_id``, falling back to the resource attributes. Spans
without a rollout or attempt id are rejected (counted in the response's ``partial_success``); missing sequence ids are
allocated in one call to the store.
"""

from __future__ import annotations

import base64
import gzip
from typing import Any, Dict, List, Optional, Tuple

from agentlightning.store.base import LightningStore
from agentlightning.types.tracer import Event, Link, OtelResource, Span, SpanContext, SpanNames, TraceStatus

from .params import BadInput

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
_STATUS_NAMES = {"STATUS_CODE_UNSET": "UNSET", "STATUS_CODE_OK": "OK", "STATUS_CODE_ERROR": "ERROR"}


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise BadInput(f"Content-Encoding {encoding!r} is not supported (use gzip or none)")
    try:
        out = gzip.decompress(body)
    except (OSError, EOFError) as exc:
        raise BadInput(f"malformed gzip body: {exc}") from None
    if len(out) > limit:
        raise BadInput(f"decompressed body is larger than the limit of {limit} bytes")
    return out


# -- protobuf --------------------------------------------------------------------------------------------------------


def _pb_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _pb_attrs(attributes: Any) -> Dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in attributes}


def _hex(raw: bytes, width: int) -> str:
    return raw.hex().rjust(width, "0") if raw else "0" * width


def parse_protobuf(body: bytes) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """``(resource, span)`` pairs in the neutral form :func:`_build_span` reads."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise BadInput(f"malformed OTLP protobuf body: {exc}") from None
    out = []
    for rs in request.resource_spans:
        resource = {"attributes": _pb_attrs(rs.resource.attributes), "schema_url": rs.schema_url}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    (
                        resource,
                        {
                            "trace_id": _hex(s.trace_id, 32),
                            "span_id": _hex(s.span_id, 16),
                            "parent_id": _hex(s.parent_span_id, 16) if s.parent_span_id else None,
                            "trace_state": s.trace_state,
                            "name": s.name,
                            "start": s.start_time_unix_nano,
                            "end": s.end_time_unix_nano,
                            "attributes": _pb_attrs(s.attributes),
                            "status": _STATUS.get(s.status.code, "UNSET"),
                            "description": s.status.message or None,
                            "events": [(e.name, e.time_unix_nano, _pb_attrs(e.attributes)) for e in s.events],
                            "links": [
                                (_hex(link.trace_id, 32), _hex(link.span_id, 16), _pb_attrs(link.attributes))
                                for link in s.links
                            ],
                        },
                    )
                )
    return out


# -- JSON (the OTLP/JSON mapping: camelCase keys, hex ids, 64-bit ints as strings) ----------------------------------


def _js_value(value: Any) -> Any:
    if not isinstance(value, dict) or not value:
        return None
    key, raw = next(iter(value.items()))
    if key == "intValue":
        return int(raw)
    if key == "doubleValue":
        return float(raw)
    if key == "arrayValue":
        return [_js_value(v) for v in (raw or {}).get("values", [])]
    if key == "kvlistValue":
        return _js_attrs((raw or {}).get("values", []))
    if key == "bytesValue":
        return base64.b64decode(raw).hex()
    return raw


def _js_attrs(attributes: Any) -> Dict[str, Any]:
    return {kv["key"]: _js_value(kv.get("value")) for kv in attributes or []}


def _js_status(code: Any) -> str:
    if isinstance(code, int):
        return _STATUS.get(code, "UNSET")
    return _STATUS_NAMES.get(str(code), "UNSET")


def parse_json(data: Any) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
    try:
        out = []
        for rs in data.get("resourceSpans", []):
            res = rs.get("resource") or {}
            resource = {"attributes": _js_attrs(res.get("attributes")), "schema_url": rs.get("schemaUrl", "")}
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    status = s.get("status") or {}
                    out.append(
                        (
                            resource,
                            {
                                "trace_id": (s.get("traceId") or "").rjust(32, "0"),
                                "span_id": (s.get("spanId") or "").rjust(16, "0"),
                                "parent_id": s.get("parentSpanId") or None,
                                "trace_state": s.get("traceState", ""),
                                "name": s.get("name", ""),
                                "start": int(s.get("startTimeUnixNano") or 0),
                                "end": int(s.get("endTimeUnixNano") or 0),
                                "attributes": _js_attrs(s.get("attributes")),
                                "status": _js_status(status.get("code", 0)),
                                "description": status.get("message") or None,
                                "events": [
                                    (e.get("name", ""), int(e.get("timeUnixNano") or 0), _js_attrs(e.get("attributes")))
                                    for e in s.get("events", [])
                                ],
                                "links": [
                                    (link.get("traceId", ""), link.get("spanId", ""), _js_attrs(link.get("attributes")))
                                    for link in s.get("links", [])
                                ],
                            },
                        )
                    )
        return out
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        raise BadInput(f"malformed OTLP JSON body: {type(exc).__name__}: {exc}") from None


# -- conversion and storage ------------------------------------------------------------------------------------------


def _seconds(nanos: int) -> Optional[float]:
    return nanos / 1e9 if nanos else None


def _sequence_id(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _trace_state(raw: str) -> Dict[str, str]:
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs}


def _build_span(resource: Dict[str, Any], s: Dict[str, Any], ids: Tuple[str, str], seq: int) -> Span:
    context = SpanContext(trace_id=s["trace_id"], span_id=s["span_id"], trace_state=_trace_state(s["trace_state"]))
    return Span(
        rollout_id=ids[0],
        attempt_id=ids[1],
        sequence_id=seq,
        trace_id=s["trace_id"],
        span_id=s["span_id"],
        parent_id=s["parent_id"],
        name=s["name"],
        status=TraceStatus(status_code=s["status"], description=s["description"]),
        attributes=s["attributes"],
        events=[Event(name=n, timestamp=_seconds(t), attributes=a) for n, t, a in s["events"]],
        links=[Link(context=SpanContext(trace_id=t, span_id=i), attributes=a or None) for t, i, a in s["links"]],
        start_time=_seconds(s["start"]),
        end_time=_seconds(s["end"]),
        context=context,
        parent=None,
        resource=OtelResource(attributes=resource["attributes"], schema_url=resource["schema_url"] or ""),
    )


def _lookup(key: str, span_attrs: Dict[str, Any], resource_attrs: Dict[str, Any]) -> Any:
    value = span_attrs.get(key)
    return resource_attrs.get(key) if value is None else value


async def store_spans(store: LightningStore, parsed: List[Tuple[Dict[str, Any], Dict[str, Any]]]) -> Tuple[int, int]:
    """Convert and store; returns ``(accepted, rejected)`` counts."""
    tagged: List[Tuple[Dict[str, Any], Dict[str, Any], Tuple[str, str], Optional[int]]] = []
    rejected = 0
    for resource, s in parsed:
        rollout_id = _lookup(SpanNames.ROLLOUT_ID, s["attributes"], resource["attributes"])
        attempt_id = _lookup(SpanNames.ATTEMPT_ID, s["attributes"], resource["attributes"])
        if not isinstance(rollout_id, str) or not isinstance(attempt_id, str) or not rollout_id or not attempt_id:
            rejected += 1
            continue
        seq = _sequence_id(_lookup(SpanNames.SPAN_SEQUENCE_ID, s["attributes"], resource["attributes"]))
        tagged.append((resource, s, (rollout_id, attempt_id), seq))
    missing = [ids for _, _, ids, seq in tagged if seq is None]
    fresh = iter(await store.get_many_span_sequence_ids(missing) if missing else [])
    spans = [_build_span(r, s, ids, seq if seq is not None else next(fresh)) for r, s, ids, seq in tagged]
    if spans:
        await store.add_many_spans(spans)
    return len(spans), rejected


def export_response(rejected: int, message: str, gzip_it: bool) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    raw = response.SerializeToString()
    return gzip.compress(raw) if gzip_it else raw
