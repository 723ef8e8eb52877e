"""``emit_annotation``: attach key/value facts to the trace."""

from __future__ import annotations

from typing import Any, Dict

from agentlightning.semconv import AGL_ANNOTATION
from agentlightning.tracer.attributes import check_attributes_sanity, flatten_attributes, sanitize_attributes
from agentlightning.tracer.base import get_active_tracer
from agentlightning.types.tracer import SpanCoreFields

from ._common import resolve_tracer
from .operation import OperationContext, operation  # upstream v0.3 defines these in this module

__all__ = ["emit_annotation", "OperationContext", "operation", "get_active_tracer"]


def emit_annotation(annotation: Dict[str, Any], propagate: bool = True) -> SpanCoreFields:
    """Record an ``agentlightning.annotation`` span whose attributes are ``annotation`` flattened.

    Values must be strings, numbers, booleans or lists of one of them (nested dicts and lists of dicts are
    flattened into dotted keys); anything else (None, objects) raises ValueError naming the key.
    """
    attributes = flatten_attributes(annotation)
    check_attributes_sanity(attributes)
    return resolve_tracer(propagate, "annotation", get_active_tracer).create_span(
        AGL_ANNOTATION, attributes=sanitize_attributes(attributes), status="OK"
    )
