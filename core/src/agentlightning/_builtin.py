"""Components that ship with core, registered through the same hooks as any plugin."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_tracers(register: Register) -> None:
    """Core's tracers: OpenTelemetry, and one that records nothing."""
    register(
        "otel", "agentlightning.tracer.otel:OtelTracer", description="OpenTelemetry SDK spans, batched to the store"
    )
    register(
        "dummy",
        "agentlightning.tracer.dummy:DummyTracer",
        description="records nothing (dev runs)",
        aliases=("noop",),
    )


@hookimpl
def agentlightning_register_adapters(register: Register) -> None:
    """Core's trace adapters."""
    register("triplet", "agentlightning.adapter.triplet:TracerTraceToTriplet", description="spans to triplets")
    register("messages", "agentlightning.adapter.messages:TraceToMessages", description="spans to OpenAI chat messages")
    register(
        "llm_proxy_triplet",
        "agentlightning.adapter.llm_proxy:LlmProxyTraceToTriplet",
        description="LLM proxy spans to triplets",
    )


@hookimpl
def agentlightning_register_execution_strategies(register: Register) -> None:
    """Core's execution strategies (upstream's "shm" and "cs" names are aliases)."""
    register(
        "inprocess",
        "agentlightning.execution.inprocess:InProcessExecutionStrategy",
        description="algorithm and runners in this process (tasks or threads)",
        aliases=("shm",),
    )
    register(
        "multiprocess",
        "agentlightning.execution.multiprocess:MultiProcessExecutionStrategy",
        description="runners in spawned processes; the store shared directly or over HTTP",
        aliases=("cs",),
    )


@hookimpl
def agentlightning_register_algorithms(register: Register) -> None:
    """Core's algorithms."""
    register("baseline", "agentlightning.algorithm.fast:Baseline", description="run every sample once, log rewards")
