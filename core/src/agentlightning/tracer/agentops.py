"""Upstream's module path of ``AgentOpsTracer`` (provided by the ``agentlightning-agentops`` plugin)."""

from __future__ import annotations

from agentlightning._reexport import lazy_exports

__all__ = ["AgentOpsTracer", "LightningSpanProcessor"]  # noqa: F822 (resolved lazily by __getattr__)

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AgentOpsTracer": "agentlightning_agentops.tracer:AgentOpsTracer",
        "LightningSpanProcessor": "agentlightning.tracer.otel:LightningSpanProcessor",
    },
    plugin="agentops",
)
