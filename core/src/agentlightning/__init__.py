"""agentlightning: train AI agents with almost no code change.

``import agentlightning as agl`` is light: it imports the data model and the contracts, never a plugin. Names that
plugins provide (``agl.InMemoryLightningStore``, ``agl.APO``, ...) resolve on first access.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.4.0"

from .store.base import UNSET, LightningStore
from .store.errors import NotFoundError, StoreError
from .types import *  # noqa: F403
from .types import __all__ as _types_all

# Names defined in core but imported on first access, to keep `import agentlightning` light.
_LAZY_CORE: dict[str, str] = {
    "hookimpl": "agentlightning.plugins:hookimpl",
    "open_store": "agentlightning.store:open_store",
    "PluginManager": "agentlightning.plugins:PluginManager",
    "get_plugin_manager": "agentlightning.plugins:get_plugin_manager",
    # tracing, emitters and adapters
    "Tracer": "agentlightning.tracer.base:Tracer",
    "OtelTracer": "agentlightning.tracer.otel:OtelTracer",
    "DummyTracer": "agentlightning.tracer.dummy:DummyTracer",
    "NoopTracer": "agentlightning.tracer.dummy:NoopTracer",
    "LightningSpanProcessor": "agentlightning.tracer.otel:LightningSpanProcessor",
    "get_active_tracer": "agentlightning.tracer.base:get_active_tracer",
    "emit_reward": "agentlightning.emitter:emit_reward",
    "emit_message": "agentlightning.emitter:emit_message",
    "emit_object": "agentlightning.emitter:emit_object",
    "emit_exception": "agentlightning.emitter:emit_exception",
    "emit_annotation": "agentlightning.emitter:emit_annotation",
    "operation": "agentlightning.emitter:operation",
    "reward": "agentlightning.emitter:reward",
    "find_final_reward": "agentlightning.emitter:find_final_reward",
    "find_reward_spans": "agentlightning.emitter:find_reward_spans",
    "get_reward_value": "agentlightning.emitter:get_reward_value",
    "get_rewards_from_span": "agentlightning.emitter:get_rewards_from_span",
    "is_reward_span": "agentlightning.emitter:is_reward_span",
    "get_message_value": "agentlightning.emitter:get_message_value",
    "get_object_value": "agentlightning.emitter:get_object_value",
    "Adapter": "agentlightning.adapter:Adapter",
    "TraceAdapter": "agentlightning.adapter:TraceAdapter",
    "OtelTraceAdapter": "agentlightning.adapter:OtelTraceAdapter",
    "TraceToTripletBase": "agentlightning.adapter:TraceToTripletBase",
    "TracerTraceToTriplet": "agentlightning.adapter:TracerTraceToTriplet",
    "LlmProxyTraceToTriplet": "agentlightning.adapter:LlmProxyTraceToTriplet",
    "TraceToMessages": "agentlightning.adapter:TraceToMessages",
    "TraceTree": "agentlightning.adapter:TraceTree",
    "RewardMatchPolicy": "agentlightning.adapter:RewardMatchPolicy",
    "instrument_openai": "agentlightning.instrumentation:instrument_openai",
    "uninstrument_openai": "agentlightning.instrumentation:uninstrument_openai",
    # agents, runner, execution strategies, algorithms, trainer
    "LitAgent": "agentlightning.litagent:LitAgent",
    "FunctionalLitAgent": "agentlightning.litagent:FunctionalLitAgent",
    "rollout": "agentlightning.litagent:rollout",
    "llm_rollout": "agentlightning.litagent:llm_rollout",
    "prompt_rollout": "agentlightning.litagent:prompt_rollout",
    "Runner": "agentlightning.runner:Runner",
    "LitAgentRunner": "agentlightning.runner:LitAgentRunner",
    "Hook": "agentlightning.runner:Hook",
    # the deprecated v0.1 HTTP API
    "LegacyAgentRunner": "agentlightning.runner.legacy:LegacyAgentRunner",
    "AgentLightningServer": "agentlightning.server:AgentLightningServer",
    "AgentLightningClient": "agentlightning.client:AgentLightningClient",
    "DevTaskLoader": "agentlightning.client:DevTaskLoader",
    "ExecutionStrategy": "agentlightning.execution:ExecutionStrategy",
    "InProcessExecutionStrategy": "agentlightning.execution:InProcessExecutionStrategy",
    "MultiProcessExecutionStrategy": "agentlightning.execution:MultiProcessExecutionStrategy",
    "SharedMemoryExecutionStrategy": "agentlightning.execution:SharedMemoryExecutionStrategy",
    "ClientServerExecutionStrategy": "agentlightning.execution:ClientServerExecutionStrategy",
    "Algorithm": "agentlightning.algorithm:Algorithm",
    "algo": "agentlightning.algorithm:algo",
    "FastAlgorithm": "agentlightning.algorithm:FastAlgorithm",
    "Baseline": "agentlightning.algorithm:Baseline",
    "batch_iter_over_dataset": "agentlightning.algorithm:batch_iter_over_dataset",
    "Trainer": "agentlightning.trainer:Trainer",
    "build_component": "agentlightning.trainer:build_component",
    # upstream v0.3's other top-level names
    "setup_logging": "agentlightning.logging:setup",
    "setup_module_logging": "agentlightning.logging:setup_module",
    "configure_logger": "agentlightning.logging:configure_logger",
    "LightningEnvVar": "agentlightning.env_var:LightningEnvVar",
    "resolve_bool_env_var": "agentlightning.env_var:resolve_bool_env_var",
    "resolve_int_env_var": "agentlightning.env_var:resolve_int_env_var",
    "resolve_str_env_var": "agentlightning.env_var:resolve_str_env_var",
    "lightning_cli": "agentlightning.config:lightning_cli",
    "LightningStoreCapabilities": "agentlightning.store.base:LightningStoreCapabilities",
    "LightningStoreStatistics": "agentlightning.store.base:LightningStoreStatistics",
    "LightningStoreThreaded": "agentlightning.store.threading:LightningStoreThreaded",
    "CollectionBasedLightningStore": "agentlightning.store.engine:EngineLightningStore",
    "set_active_tracer": "agentlightning.tracer.base:set_active_tracer",
    "clear_active_tracer": "agentlightning.tracer.base:clear_active_tracer",
    "get_tracer_provider": "agentlightning.utils.otel:get_tracer_provider",
    "instrument_all": "agentlightning.instrumentation:instrument_all",
    "uninstrument_all": "agentlightning.instrumentation:uninstrument_all",
    "ExecutionEvent": "agentlightning.execution.events:ExecutionEvent",
    "ThreadingEvent": "agentlightning.execution.events:ThreadingEvent",
    "MultiprocessingEvent": "agentlightning.execution.events:MultiprocessingEvent",
    "generate_id": "agentlightning.utils.id:generate_id",
}

__all__ = ["__version__", "LightningStore", "UNSET", "StoreError", "NotFoundError", *_types_all]


def register_lazy(name: str, target: str) -> None:
    """Make ``agentlightning.<name>`` resolve to ``"module:attribute"`` on first access (used by core modules)."""
    _LAZY_CORE[name] = target


def __getattr__(name: str) -> Any:
    from .plugins.registry import resolve_factory

    target = _LAZY_CORE.get(name)
    if target is not None:
        value = resolve_factory(target)
        globals()[name] = value
        return value
    if name.startswith("_"):
        raise AttributeError(name)
    from .plugins import get_plugin_manager
    from .plugins.errors import UnknownComponentError

    manager = get_plugin_manager()
    try:
        registration = manager.get("exports", name)
    except UnknownComponentError as exc:  # an AttributeError, so that hasattr() and `from ... import` behave
        raise AttributeError(f"module 'agentlightning' has no attribute {name!r} ({exc})") from None
    value = registration.load()
    globals()[name] = value
    return value


def _core_names() -> frozenset[str]:
    """The names core itself defines at the top level; a plugin export may not reuse one."""
    return frozenset(__all__) | frozenset(_LAZY_CORE) | {"register_lazy"}


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_CORE))
