"""``emit_object``: any JSON-serialisable value (or bytes) in the trace, and reading it back."""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, Dict, Optional

from agentlightning.semconv import AGL_OBJECT, LightningSpanAttributes
from agentlightning.tracer.base import get_active_tracer
from agentlightning.types.tracer import SpanCoreFields

from ._common import extra_attributes, resolve_tracer

__all__ = ["emit_object", "encode_object", "get_object_value"]

_TYPE = LightningSpanAttributes.OBJECT_TYPE
_LITERAL = LightningSpanAttributes.OBJECT_LITERAL
_JSON = LightningSpanAttributes.OBJECT_JSON


def _type_name(value: Any) -> str:
    cls = type(value)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def encode_object(value: Any) -> Dict[str, str]:
    """Literals (str, int, float, bool) as text, bytes as base64, everything else as JSON."""
    if isinstance(value, (str, bool, int, float)):
        return {_TYPE: type(value).__name__, _LITERAL: str(value)}
    if isinstance(value, bytes):
        return {_TYPE: "bytes", _LITERAL: base64.b64encode(value).decode("ascii")}
    try:
        encoded = json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise RuntimeError(f"emit_object: a {_type_name(value)} is not JSON serialisable: {exc}") from exc
    return {_TYPE: _type_name(value), _JSON: encoded}


def emit_object(object: Any, attributes: Optional[Dict[str, Any]] = None, propagate: bool = True) -> SpanCoreFields:
    """Record an ``agentlightning.object`` span holding ``object``."""
    attrs = {**extra_attributes(attributes), **encode_object(object)}
    return resolve_tracer(propagate, "object", get_active_tracer).create_span(AGL_OBJECT, attributes=attrs, status="OK")


def get_object_value(span: Any) -> Any:
    """The value an object span holds, or None when it holds none."""
    attrs = span.attributes or {}
    if _JSON in attrs:
        try:
            return json.loads(attrs[_JSON])
        except (TypeError, ValueError) as exc:
            raise RuntimeError(f"{_JSON} is not valid JSON: {exc}") from exc
    if _LITERAL not in attrs:
        return None
    literal, kind = attrs[_LITERAL], attrs.get(_TYPE)
    decoders: Dict[str, Callable[[Any], Any]] = {
        "str": str,
        "int": int,
        "float": float,
        "bool": lambda s: str(s).lower() == "true",
        "bytes": base64.b64decode,
    }
    if kind not in decoders:
        raise RuntimeError(f"{_TYPE} {kind!r} is not a literal type (str, int, float, bool, bytes)")
    return decoders[kind](literal)
