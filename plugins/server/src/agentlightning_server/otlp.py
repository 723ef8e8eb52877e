"""OTLP/HTTP trace ingestion: ``ExportTraceServiceRequest`` (protobuf or JSON) to stored spans.

Decoding and conversion are :mod:`agentlightning.utils.otlp`'s (the official ``opentelemetry-proto`` classes); this
module turns their errors into HTTP 400s. Spans without a rollout or attempt id are rejected (counted in the
response's ``partial_success``); missing sequence ids are allocated in one call to the store.
"""

from __future__ import annotations

import gzip
import zlib
from typing import TYPE_CHECKING, Any, List, Tuple

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

__all__ = [
    "PROTOBUF",
    "JSON",
    "Decompressor",
    "decompress",
    "parse_protobuf",
    "parse_json",
    "store_spans",
    "export_response",
]


class Decompressor:
    """Decodes a body's ``Content-Encoding`` chunk by chunk, refusing it as soon as the decoded bytes pass ``limit``
    (a small gzip body can expand a thousandfold: it is never decoded whole first)."""

    def __init__(self, encoding: str, limit: int) -> None:
        encoding = encoding.strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip"):
            raise BadInput(f"Content-Encoding {encoding!r} is not supported (use gzip or none)")
        self.gzip = encoding in ("gzip", "x-gzip")
        self.limit = limit
        self._parts: List[bytes] = []
        self._size = 0
        self._inflate: Any = zlib.decompressobj(wbits=31) if self.gzip else None
        self._in_member = False

    def _add(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.limit:
            raise BadInput(f"decompressed body is larger than the limit of {self.limit} bytes")
        if data:
            self._parts.append(data)

    def feed(self, chunk: bytes) -> None:
        if not self.gzip:
            self._add(chunk)
            return
        try:
            while chunk:
                self._in_member = True
                inflate = self._inflate
                self._add(inflate.decompress(chunk, self.limit - self._size + 1))
                chunk = inflate.unconsumed_tail
                if inflate.eof:  # a member ended: what follows is another member
                    chunk = inflate.unused_data + chunk
                    self._inflate = zlib.decompressobj(wbits=31)
                    self._in_member = False
        except zlib.error as exc:
            raise BadInput(f"malformed gzip body: {exc}") from None

    def result(self) -> bytes:
        """The decoded body; raises :class:`BadInput` if a gzip member was cut short."""
        if self._in_member:
            raise BadInput("malformed gzip body: it ends before its end marker")
        return b"".join(self._parts)


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded (gzip or identity), refused once the output passes ``limit`` bytes."""
    decoder = Decompressor(encoding, limit)
    decoder.feed(body)
    return decoder.result()


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
