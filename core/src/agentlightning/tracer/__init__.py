"""Tracers: record what an agent does as spans and deliver them to the store."""

from __future__ import annotations

from typing import Any

from .base import Tracer, clear_active_tracer, get_active_tracer, set_active_tracer, with_active_tracer_context
from .dummy import DummySpanRecordingContext, DummyTracer, NoopTracer

__all__ = [
    "Tracer",
    "OtelTracer",
    "DummyTracer",
    "NoopTracer",
    "DummySpanRecordingContext",
    "LightningSpanProcessor",
    "get_active_tracer",
    "set_active_tracer",
    "clear_active_tracer",
    "with_active_tracer_context",
    "AgentOpsTracer",
]


def __getattr__(name: str) -> Any:
    # OtelTracer pulls in the OpenTelemetry SDK; import it on first use only.
    if name in ("OtelTracer", "LightningSpanProcessor"):
        from . import otel

        return getattr(otel, name)
    if name == "AgentOpsTracer":  # upstream's path; the agentlightning-agentops plugin provides it
        from . import agentops

        return agentops.AgentOpsTracer
    raise AttributeError(f"module 'agentlightning.tracer' has no attribute {name!r}")
