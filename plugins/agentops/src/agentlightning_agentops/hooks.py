"""Registers the ``agentops`` tracer and the top-level ``AgentOpsTracer``; imports nothing heavy."""

from __future__ import annotations

from typing import Any

from agentlightning.plugins import hookimpl


@hookimpl
def agentlightning_register_tracers(register: Any) -> None:
    register(
        "agentops",
        "agentlightning_agentops.tracer:AgentOpsTracer",
        description="AgentOps instrumentation into the store (offline unless the AgentOps service is enabled)",
    )


@hookimpl
def agentlightning_register_exports(register: Any) -> None:
    register("AgentOpsTracer", "agentlightning_agentops.tracer:AgentOpsTracer")
