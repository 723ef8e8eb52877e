"""Spans as an OTLP export request, for stores that ingest OTLP (``capabilities["otlp_traces"]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Sequence, Tuple

from agentlightning.semconv import LightningResourceAttributes
from agentlightning.types.tracer import Span
from agentlightning.utils.otlp import export_request

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = ["encode_export_request"]

_CLIENT = 3
"""The OTLP span kind of an LLM call."""


def encode_export_request(spans: Sequence[Span]) -> ExportTraceServiceRequest:
    """One ``ResourceSpans`` per (rollout, attempt, sequence id), tagged with agentlightning's resource attributes so
    that the store files each span where it belongs."""
    groups: Dict[Tuple[str, str, int], List[Span]] = {}
    for span in spans:
        groups.setdefault((span.rollout_id, span.attempt_id, span.sequence_id), []).append(span)
    return export_request(
        (
            (
                {
                    "service.name": "agentlightning-llm-proxy",
                    LightningResourceAttributes.ROLLOUT_ID: rollout_id,
                    LightningResourceAttributes.ATTEMPT_ID: attempt_id,
                    LightningResourceAttributes.SPAN_SEQUENCE_ID: sequence_id,
                },
                group,
            )
            for (rollout_id, attempt_id, sequence_id), group in groups.items()
        ),
        scope_name="agentlightning_litellm",
        kind=_CLIENT,
    )
