"""OTLP/HTTP trace ingestion: ``ExportTraceServiceRequest`` (protobuf or JSON) to stored spans.

Decoding and conversion are :mod:`agentlightning.utils.otlp`'s (the official ``opentelemetry-proto`` classes); this
module turns their errors into HTTP 400s. Spans without a rollout or attempt id are rejected (counted in the
response's ``partial_success``); missing sequence ids are allocated in one call to the store.
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any, Tuple

from agentlightning.store.base import LightningStore
from agentlightning.utils.otlp import (
    JSON,
    PROTOBUF,
    OTLPDecodeError,
    count_spans,
    export_request_from_json,
    parse_export_request,
    spans_from_proto,
)

from .params import BadInput

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = ["PROTOBUF", "JSON", "decompress", "parse_protobuf", "parse_json", "store_spans", "export_response"]


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


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    try:
        return parse_export_request(body, PROTOBUF)
    except OTLPDecodeError as exc:
        raise BadInput(str(exc)) from None


def parse_json(data: Any) -> ExportTraceServiceRequest:
    """An OTLP/JSON body (already read as JSON)."""
    try:
        return export_request_from_json(data)
    except OTLPDecodeError as exc:
        raise BadInput(str(exc)) from None


async def store_spans(store: LightningStore, request: ExportTraceServiceRequest) -> Tuple[int, int]:
    """Convert and store; returns ``(accepted, rejected)`` counts."""
    spans = await spans_from_proto(request, store.get_many_span_sequence_ids)
    if spans:
        await store.add_many_spans(spans)
    return len(spans), count_spans(request) - len(spans)


def export_response(rejected: int, message: str, gzip_it: bool) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    raw = response.SerializeToString()
    return gzip.compress(raw) if gzip_it else raw
