"""Upstream's ``agentlightning.utils.otel``: OpenTelemetry helpers and the span-attribute helpers.

The attribute helpers live in :mod:`agentlightning.tracer.attributes`; this module re-exports them at upstream's path
and adds the tracer-provider lookups. The OpenTelemetry SDK is imported only when a lookup runs.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional, Type, TypeVar

from agentlightning.tracer.attributes import (
    check_attributes_sanity,
    extract_links_from_attributes,
    extract_tags_from_attributes,
    filter_and_unflatten_attributes,
    filter_attributes,
    flatten_attributes,
    format_exception_attributes,
    make_link_attributes,
    make_tag_attributes,
    query_linked_spans,
    sanitize_attribute_value,
    sanitize_attributes,
    sanitize_list_attribute_sanity,
    unflatten_attributes,
)

__all__ = [
    "full_qualified_name",
    "get_tracer_provider",
    "get_span_processors",
    "get_tracer",
    "check_attributes_sanity",
    "extract_links_from_attributes",
    "extract_tags_from_attributes",
    "filter_and_unflatten_attributes",
    "filter_attributes",
    "flatten_attributes",
    "format_exception_attributes",
    "make_link_attributes",
    "make_tag_attributes",
    "query_linked_spans",
    "sanitize_attribute_value",
    "sanitize_attributes",
    "sanitize_list_attribute_sanity",
    "unflatten_attributes",
]

logger = logging.getLogger(__name__)
P = TypeVar("P")


def full_qualified_name(obj: type) -> str:
    """``module.QualName`` of a class (just ``QualName`` for builtins)."""
    if obj.__module__ == "builtins":
        return obj.__qualname__
    return f"{obj.__module__}.{obj.__qualname__}"


def _emitter_debug() -> bool:
    from agentlightning.env_var import LightningEnvVar, resolve_bool_env_var

    return resolve_bool_env_var(
        LightningEnvVar.AGL_EMITTER_DEBUG, fallback=logging.getLogger("agentlightning").isEnabledFor(logging.DEBUG)
    )


def get_tracer_provider(inspect: bool = True) -> Any:
    """The global OpenTelemetry tracer provider (an SDK ``TracerProvider`` when tracing is set up).

    Raises ``RuntimeError`` when no provider was ever set. With ``inspect`` and emitter debugging on (env
    ``AGL_EMITTER_DEBUG``, by default when the ``agentlightning`` logger is at DEBUG) its span processors are logged.
    """
    from opentelemetry import trace as trace_api
    from opentelemetry.sdk.trace import TracerProvider

    if getattr(trace_api, "_TRACER_PROVIDER", None) is None:
        raise RuntimeError("Tracer is not initialized. Cannot emit a meaningful span.")
    provider = trace_api.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        logger.error("The global tracer provider is %s, not an OpenTelemetry SDK TracerProvider", type(provider))
        return provider
    if inspect and _emitter_debug():
        for processor in get_span_processors(provider):
            exporter = getattr(processor, "span_exporter", None)
            logger.debug("Active span processor: %s (exporter: %s)", full_qualified_name(type(processor)), exporter)
    return provider


def get_span_processors(provider: Any, processor_type: Optional[Type[P]] = None) -> List[Any]:
    """The span processors registered on an SDK tracer provider (only those of ``processor_type`` when given)."""
    active = getattr(provider, "_active_span_processor", None)
    processors = list(getattr(active, "_span_processors", ()))
    if processor_type is not None:
        processors = [p for p in processors if isinstance(p, processor_type)]
    return processors


def get_tracer(use_active_span_processor: bool = True) -> Any:
    """The ``agentlightning`` OpenTelemetry tracer of the global provider.

    With ``use_active_span_processor=False`` it is an isolated SDK tracer: spans are created but go to no processor.
    """
    from opentelemetry.sdk.trace import SpanLimits, SynchronousMultiSpanProcessor, Tracer
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    provider = get_tracer_provider(inspect=True)
    if use_active_span_processor:
        return provider.get_tracer("agentlightning")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scope: Any = InstrumentationScope("agentlightning", "", "")  # also as the deprecated instrumentation_info
        processor: Any = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
        return Tracer(provider.sampler, provider.resource, processor, provider.id_generator, scope, SpanLimits(), scope)
