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
    """Core's execution strategies; upstream's "shm" and "cs" build its class names (subclasses of ours that take
    upstream's argument order)."""
    register(
        "inprocess",
        "agentlightning.execution.inprocess:InProcessExecutionStrategy",
        description="algorithm and runners in this process (tasks or threads)",
    )
    register(
        "shm",
        "agentlightning.execution.shared_memory:SharedMemoryExecutionStrategy",
        description="upstream's name: the in-process strategy with upstream's arguments",
    )
    register(
        "multiprocess",
        "agentlightning.execution.multiprocess:MultiProcessExecutionStrategy",
        description="runners in spawned processes; the store shared directly or over HTTP; multi-machine roles",
    )
    register(
        "cs",
        "agentlightning.execution.client_server:ClientServerExecutionStrategy",
        description="upstream's name: the multi-process strategy with upstream's arguments (role first)",
    )


@hookimpl
def agentlightning_register_algorithms(register: Register) -> None:
    """Core's algorithms."""
    register("baseline", "agentlightning.algorithm.fast:Baseline", description="run every sample once, log rewards")
