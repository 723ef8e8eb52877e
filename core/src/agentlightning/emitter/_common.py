"""How emitters find their tracer, and how they turn extra attributes into span attributes."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Callable, Dict, Mapping, Optional

from agentlightning.tracer.attributes import flatten_attributes, sanitize_attributes
from agentlightning.tracer.base import Tracer, get_active_tracer
from agentlightning.tracer.dummy import DummyTracer

__all__ = ["NoActiveTracerWarning", "resolve_tracer", "extra_attributes", "encode_under"]


class NoActiveTracerWarning(UserWarning):
    """An emitter ran outside any trace context: its span was built but recorded nowhere."""


_DUMMY = DummyTracer()


def resolve_tracer(propagate: bool, what: str, lookup: Callable[[], Optional[Tracer]] = get_active_tracer) -> Tracer:
    """The active tracer, or a :class:`DummyTracer` when ``propagate`` is False or no trace context is open.

    ``lookup`` finds the active tracer; each emitter module passes its own ``get_active_tracer`` global, so that code
    written for upstream v0.3 can patch ``agentlightning.emitter.<module>.get_active_tracer``.
    """
    if not propagate:
        return _DUMMY
    tracer = lookup()
    if tracer is None:
        warnings.warn(
            f"No active tracer found: the {what} span is not recorded. Emit inside `async with "
            "tracer.trace_context(...)`, or pass propagate=False to build the span without recording it.",
            NoActiveTracerWarning,
            stacklevel=_caller_stacklevel(),
        )
        return _DUMMY
    return tracer


_EMITTER_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_stacklevel() -> int:
    """The stacklevel of the first frame outside this package, so warnings point at the user's emit call."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _EMITTER_DIR:
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def extra_attributes(attributes: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """User attributes, flattened (leaf lists kept) and sanitized."""
    if not attributes:
        return {}
    return sanitize_attributes(flatten_attributes(dict(attributes)))


def _primitive_list(value: Any) -> bool:
    if not isinstance(value, (list, tuple)) or not value:
        return False
    return isinstance(value[0], (str, bool, int, float)) and len({type(item) for item in value}) == 1


def encode_under(prefix: str, value: Any) -> Dict[str, Any]:
    """``value`` flattened below ``prefix`` and sanitized; anything unflattenable becomes a JSON string of str()."""
    try:
        if _primitive_list(value):  # one attribute, as it would be below the root
            flat: Dict[str, Any] = {"": list(value)}
        else:
            flat = flatten_attributes(value)
    except ValueError:
        flat = {"": str(value)}
    out = {}
    for key, item in sanitize_attributes(flat).items():
        out[f"{prefix}.{key}" if key else prefix] = item
    return out
