"""Records to JSON text and back.

Writing uses the stdlib ``json`` (orjson would silently turn NaN into null); reading uses orjson when installed.
The JSON is exactly what the project's converter (:func:`agentlightning.types.to_dict`) writes. Spans, by far the
most numerous records, take a direct path that builds the same dicts and objects without the converter's generic
dispatch (a few times faster); it is used only while the span models have the fields it was written for, and any
value it cannot handle sends that record through the converter instead.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional, Type, TypeVar

import attrs
from agentlightning.store.errors import InvalidRequestError
from agentlightning.types import from_dict, rollout_from_dict, to_dict
from agentlightning.types.core import Rollout
from agentlightning.types.tracer import Event, Link, OtelResource, Span, SpanContext, TraceStatus

__all__ = ["encode", "decode", "decode_rollout", "span_to_dict", "span_from_dict", "FAST_SPANS"]

T = TypeVar("T")

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _load_json() -> Callable[[str], Any]:
    """``json.loads``, through orjson when it is installed (about twice as fast); orjson refuses the few texts it
    reads differently (NaN, huge integers, lone surrogates), and those go to ``json.loads``."""
    try:
        import orjson
    except ImportError:
        return json.loads
    fast = orjson.loads
    fallback = json.loads

    def loads(text: str) -> Any:
        try:
            return fast(text)
        except orjson.JSONDecodeError:
            return fallback(text)

    return loads


_loads = _load_json()

_CONTEXT_KEYS = ("trace_id", "span_id", "is_remote", "trace_state")
_STATUS_KEYS = ("status_code", "description")
_EVENT_KEYS = ("name", "attributes", "timestamp")
_LINK_KEYS = ("context", "attributes")
_RESOURCE_KEYS = ("attributes", "schema_url")
_SPAN_KEYS = (
    "rollout_id",
    "attempt_id",
    "sequence_id",
    "trace_id",
    "span_id",
    "parent_id",
    "name",
    "status",
    "attributes",
    "events",
    "links",
    "start_time",
    "end_time",
    "context",
    "parent",
    "resource",
)


def _fields_are(cls: type, names: tuple[str, ...], extras: bool) -> bool:
    return tuple(f.name for f in attrs.fields(cls)) == ((*names, "extras") if extras else names)


FAST_SPANS = all(
    (
        _fields_are(SpanContext, _CONTEXT_KEYS, True),
        _fields_are(TraceStatus, _STATUS_KEYS, True),
        _fields_are(Event, _EVENT_KEYS, True),
        _fields_are(Link, _LINK_KEYS, True),
        _fields_are(OtelResource, _RESOURCE_KEYS, False),
        _fields_are(Span, _SPAN_KEYS, True),
    )
)
"""Whether the span models still have the fields the direct path knows (else every span uses the converter)."""


# -- span -> dict -------------------------------------------------------------------------------------------------


def _merge(out: Dict[str, Any], extras: Dict[str, Any]) -> Dict[str, Any]:
    for key, value in extras.items():  # unknown keys come last and never shadow a field (as the converter does)
        out.setdefault(key, value)
    return out


def _context_dict(c: Optional[SpanContext]) -> Optional[Dict[str, Any]]:
    if c is None:
        return None
    out = {"trace_id": c.trace_id, "span_id": c.span_id, "is_remote": c.is_remote, "trace_state": c.trace_state}
    return _merge(out, c.extras) if c.extras else out


def span_to_dict(s: Span) -> Dict[str, Any]:
    """``to_dict(span)`` for JSON-ready attribute values (which it shares rather than copies)."""
    status = s.status
    status_out = {"status_code": status.status_code, "description": status.description}
    out = {
        "rollout_id": s.rollout_id,
        "attempt_id": s.attempt_id,
        "sequence_id": s.sequence_id,
        "trace_id": s.trace_id,
        "span_id": s.span_id,
        "parent_id": s.parent_id,
        "name": s.name,
        "status": _merge(status_out, status.extras) if status.extras else status_out,
        "attributes": s.attributes,
        "events": [
            _merge(d, e.extras) if e.extras else d
            for e in s.events
            for d in ({"name": e.name, "attributes": e.attributes, "timestamp": e.timestamp},)
        ],
        "links": [
            _merge(d, k.extras) if k.extras else d
            for k in s.links
            for d in ({"context": _context_dict(k.context), "attributes": k.attributes},)
        ],
        "start_time": s.start_time,
        "end_time": s.end_time,
        "context": _context_dict(s.context),
        "parent": _context_dict(s.parent),
        "resource": {"attributes": s.resource.attributes, "schema_url": s.resource.schema_url},
    }
    return _merge(out, s.extras) if s.extras else out


# -- dict -> span -------------------------------------------------------------------------------------------------


def _extra(d: Dict[str, Any], known: tuple[str, ...]) -> Dict[str, Any]:
    if len(d) == len(known):
        return {}
    return {k: v for k, v in d.items() if k not in known}


def _time(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def _context(d: Optional[Dict[str, Any]]) -> Optional[SpanContext]:
    if d is None:
        return None
    return SpanContext(
        trace_id=d["trace_id"],
        span_id=d["span_id"],
        is_remote=d["is_remote"],
        trace_state=d["trace_state"],
        extras=_extra(d, _CONTEXT_KEYS),
    )


def span_from_dict(d: Dict[str, Any]) -> Span:
    """``from_dict(d, Span)`` for dicts this module wrote (trusted: no per-field type checks)."""
    status = d["status"]
    resource = d["resource"]
    return Span(
        rollout_id=d["rollout_id"],
        attempt_id=d["attempt_id"],
        sequence_id=int(d["sequence_id"]),
        trace_id=d["trace_id"],
        span_id=d["span_id"],
        parent_id=d["parent_id"],
        name=d["name"],
        status=TraceStatus(
            status_code=status["status_code"], description=status["description"], extras=_extra(status, _STATUS_KEYS)
        ),
        attributes=d["attributes"],
        events=[
            Event(
                name=e["name"],
                attributes=e["attributes"],
                timestamp=_time(e["timestamp"]),
                extras=_extra(e, _EVENT_KEYS),
            )
            for e in d["events"]
        ],
        links=[
            Link(context=_context(k["context"]), attributes=k["attributes"], extras=_extra(k, _LINK_KEYS))  # type: ignore[arg-type]
            for k in d["links"]
        ],
        start_time=_time(d["start_time"]),
        end_time=_time(d["end_time"]),
        context=_context(d["context"]),
        parent=_context(d["parent"]),
        resource=OtelResource(attributes=resource["attributes"], schema_url=resource["schema_url"]),
        extras=_extra(d, _SPAN_KEYS),
    )


# -- text ---------------------------------------------------------------------------------------------------------


def _refuse(record: Any, exc: Exception) -> InvalidRequestError:
    name = type(record).__name__
    ident = getattr(record, "rollout_id", None) or getattr(record, "resources_id", None) or ""
    label = f"{name} {ident}" if ident else name
    return InvalidRequestError(f"{label} cannot be stored as JSON: {exc}")


def encode(record: Any) -> str:
    """A model as compact JSON; refuses values JSON cannot hold with an error naming the record."""
    if FAST_SPANS and type(record) is Span:
        try:
            return _dumps(span_to_dict(record))
        except (TypeError, ValueError):
            pass  # e.g. an attrs object among the attributes: the converter knows how to write it
    try:
        return _dumps(to_dict(record))
    except (TypeError, ValueError) as exc:
        raise _refuse(record, exc) from exc


def decode(text: str, cls: Type[T]) -> T:
    data = _loads(text)
    if FAST_SPANS and cls is Span:
        try:
            return span_from_dict(data)  # type: ignore[return-value]
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    return from_dict(data, cls)


def decode_rollout(text: str) -> Rollout:
    """A Rollout, or an AttemptedRollout if one was stored."""
    return rollout_from_dict(_loads(text))
