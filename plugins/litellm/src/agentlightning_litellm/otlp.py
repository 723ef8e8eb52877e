"""Spans as an OTLP/JSON export request, for stores that ingest OTLP (``capabilities["otlp_traces"]``)."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

from agentlightning.semconv import LightningResourceAttributes
from agentlightning.types.tracer import Span

__all__ = ["encode_export_request"]

_STATUS = {"UNSET": 0, "OK": 1, "ERROR": 2}


def _value(value: Any) -> Dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"stringValue": value if isinstance(value, str) else str(value)}


def _attributes(attributes: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in attributes.items() if v is not None]


def _nanos(seconds: Any) -> str:
    return str(int(seconds * 1e9)) if seconds else "0"


def _span(span: Span) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "name": span.name,
        "kind": 3,  # CLIENT
        "startTimeUnixNano": _nanos(span.start_time),
        "endTimeUnixNano": _nanos(span.end_time),
        "attributes": _attributes(span.attributes),
        "events": [
            {"name": e.name, "timeUnixNano": _nanos(e.timestamp), "attributes": _attributes(e.attributes)}
            for e in span.events
        ],
        "status": {"code": _STATUS[span.status.status_code], "message": span.status.description or ""},
    }
    if span.parent_id:
        out["parentSpanId"] = span.parent_id
    return out


def encode_export_request(spans: Sequence[Span]) -> Dict[str, Any]:
    """One ``resourceSpans`` entry per (rollout, attempt, sequence id), tagged with agentlightning's resource
    attributes so that the store files each span where it belongs."""
    groups: Dict[tuple[str, str, int], List[Span]] = {}
    for span in spans:
        groups.setdefault((span.rollout_id, span.attempt_id, span.sequence_id), []).append(span)
    resource_spans = []
    for (rollout_id, attempt_id, sequence_id), group in groups.items():
        resource = {
            "service.name": "agentlightning-llm-proxy",
            LightningResourceAttributes.ROLLOUT_ID: rollout_id,
            LightningResourceAttributes.ATTEMPT_ID: attempt_id,
            LightningResourceAttributes.SPAN_SEQUENCE_ID: sequence_id,
        }
        resource_spans.append(
            {
                "resource": {"attributes": _attributes(resource)},
                "scopeSpans": [{"scope": {"name": "agentlightning_litellm"}, "spans": [_span(s) for s in group]}],
            }
        )
    return {"resourceSpans": resource_spans}
