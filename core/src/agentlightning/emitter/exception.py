"""``emit_exception``: record an exception the agent handled."""

from __future__ import annotations

from typing import Any, Dict, Optional

from agentlightning.semconv import AGL_EXCEPTION
from agentlightning.tracer.attributes import format_exception_attributes
from agentlightning.tracer.base import get_active_tracer

from ._common import extra_attributes, resolve_tracer

__all__ = ["emit_exception"]


def emit_exception(
    exception: BaseException, attributes: Optional[Dict[str, Any]] = None, propagate: bool = True
) -> None:
    """Record an ``agentlightning.exception`` span with OpenTelemetry's ``exception.*`` attributes (status OK)."""
    if not isinstance(exception, BaseException):
        raise TypeError(f"emit_exception expects an exception, got {type(exception).__name__}")
    attrs = {**extra_attributes(attributes), **format_exception_attributes(exception)}
    resolve_tracer(propagate, "exception", get_active_tracer).create_span(AGL_EXCEPTION, attributes=attrs, status="OK")
