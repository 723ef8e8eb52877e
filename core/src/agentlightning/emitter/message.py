"""``emit_message``: a free-form text message in the trace."""

from __future__ import annotations

from typing import Any, Dict, Optional

from agentlightning.semconv import AGL_MESSAGE, LightningSpanAttributes
from agentlightning.tracer.base import get_active_tracer

from ._common import extra_attributes, resolve_tracer

__all__ = ["emit_message", "get_message_value"]


def emit_message(message: str, attributes: Optional[Dict[str, Any]] = None, propagate: bool = True) -> None:
    """Record an ``agentlightning.message`` span with ``agentlightning.message.body = message``."""
    if not isinstance(message, str):
        raise TypeError(f"emit_message expects a str, got {type(message).__name__}")
    attrs = {**extra_attributes(attributes), LightningSpanAttributes.MESSAGE_BODY: message}
    resolve_tracer(propagate, "message", get_active_tracer).create_span(AGL_MESSAGE, attributes=attrs, status="OK")


def get_message_value(span: Any) -> Optional[str]:
    """The body of a message span, or None when it has none."""
    value = (span.attributes or {}).get(LightningSpanAttributes.MESSAGE_BODY)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{LightningSpanAttributes.MESSAGE_BODY} must be a str, got {type(value).__name__}")
    return value
