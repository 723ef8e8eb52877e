"""AgentOps tracer for agentlightning: AgentOps' instrumentation feeds the store, offline by default."""

from __future__ import annotations

from typing import Any

__all__ = ["AgentOpsTracer", "enable_agentops_service", "is_agentops_service_enabled"]


def __getattr__(name: str) -> Any:
    # tracer pulls in the OpenTelemetry SDK; agentops itself is imported only when a worker starts
    if name == "AgentOpsTracer":
        from .tracer import AgentOpsTracer

        return AgentOpsTracer
    if name in ("enable_agentops_service", "is_agentops_service_enabled"):
        from . import offline

        return getattr(offline, name)
    raise AttributeError(f"module 'agentlightning_agentops' has no attribute {name!r}")
