"""Registers the ``agentops`` tracer and the top-level ``AgentOpsTracer``; imports nothing heavy."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_tracers(register: Register) -> None:
    register(
        "agentops",
        "agentlightning_agentops.tracer:AgentOpsTracer",
        description="AgentOps instrumentation into the store (offline unless the AgentOps service is enabled)",
    )


@hookimpl
def agentlightning_register_exports(register: Register) -> None:
    register("AgentOpsTracer", "agentlightning_agentops.tracer:AgentOpsTracer")
