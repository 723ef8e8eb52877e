"""Spans as the in-memory store keeps them: flat tuples of plain values, rebuilt into fresh :class:`Span` objects.

A stored :class:`Span` is six or more objects the garbage collector tracks (the span, its status, context and resource,
two lists), and every full collection walks all of them: with tens of thousands of spans kept, collections dominated
the cost of a store call. A packed span is one tuple of strings, numbers and ``None`` holding at most one more level
of such tuples (the attribute keys, the attribute values, the rarer parts); CPython stops tracking tuples of plain
values at the young collections that first see them, so kept spans cost the collector nothing. The usual context
(the span's own ids, local, nothing else) is packed as a flag. A query rebuilds a fresh, equal span, so callers that
mutate what they got cannot change what is stored.

The attribute values sit in the packed tuple itself, after a tuple of their keys that spans with the same attribute
names share (a bounded cache): a kept span is then a single tuple the collector ever counts, besides the few nested
ones a rarer part (events, links, a status with extras, ...) brings. Fewer tracked allocations per kept span mean
fewer young collections while spans stream in.

Values nested inside attributes (a list, a dict) are kept by reference, as before; a span whose parts are not of the
exact model types (a subclass, a tuple where a list is expected, ...) is kept as the object itself, unchanged.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable, Dict, Optional, Tuple

from agentlightning.types.tracer import (
    Event,
    Link,
    OtelResource,
    Span,
    SpanContext,
    TraceStatus,
    _build_context,
    _build_resource,
    _build_span,
    _build_status,
)

__all__ = ["PackedSpan", "pack_span", "unpack_span", "packed_sequence_id"]

PackedSpan = Tuple[Any, ...]
"""``(attempt_id, sequence_id, fields..., attribute_keys, *attribute_values)``; ``(attempt_id, sequence_id, span)``
for a span kept as it is."""

_RAW_LENGTH = 3

_KEY_CACHE_SIZE = 4096
"""At most this many distinct attribute-name tuples are shared; beyond it each span keeps its own."""

_keys: Dict[Tuple[str, ...], Tuple[str, ...]] = {}


def _shared_keys(attributes: Dict[str, Any]) -> Tuple[str, ...]:
    """The attribute names as a tuple, the same object for every span with these names (while the cache has room)."""
    keys = tuple(attributes)
    shared = _keys.get(keys)
    if shared is not None:
        return shared
    if len(_keys) < _KEY_CACHE_SIZE:  # dict writes are atomic: threads at worst store equal tuples twice
        _keys[keys] = keys
    return keys


class _Unpackable(Exception):
    """A part of the span is not of the exact type the packed form rebuilds."""


def _items(value: Any) -> Tuple[Tuple[Any, Any], ...]:
    if type(value) is not dict:
        raise _Unpackable
    return tuple(value.items()) if value else ()


def _pack_context(context: Optional[SpanContext]) -> Optional[Tuple[Any, ...]]:
    if context is None:
        return None
    if type(context) is not SpanContext:
        raise _Unpackable
    return (context.trace_id, context.span_id, context.is_remote, _items(context.trace_state), _items(context.extras))


_OWN = True
"""Packed in place of the usual context: the span's own ids (its ``span_id`` for ``context``, its ``parent_id`` for
``parent``), local, with nothing else set."""


def _pack_own_context(context: Optional[SpanContext], trace_id: Any, span_id: Any) -> Any:
    if context is None:
        return None
    if (
        type(context) is SpanContext
        and context.is_remote is False
        and context.span_id == span_id
        and context.trace_id == trace_id
        and type(context.trace_state) is dict
        and not context.trace_state
        and type(context.extras) is dict
        and not context.extras
    ):
        return _OWN
    return _pack_context(context)


def _unpack_context(packed: Optional[Tuple[Any, ...]]) -> Optional[SpanContext]:
    if packed is None:
        return None
    trace_id, span_id, is_remote, trace_state, extras = packed
    return _build_context(
        trace_id, span_id, is_remote, dict(trace_state) if trace_state else {}, dict(extras) if extras else {}
    )


def _pack_event(event: Event) -> Tuple[Any, ...]:
    if type(event) is not Event:
        raise _Unpackable
    return (event.name, _items(event.attributes), event.timestamp, _items(event.extras))


def _unpack_event(packed: Tuple[Any, ...]) -> Event:
    name, attributes, timestamp, extras = packed
    return Event(name=name, attributes=dict(attributes), timestamp=timestamp, extras=dict(extras))


def _pack_link(link: Link) -> Tuple[Any, ...]:
    if type(link) is not Link:
        raise _Unpackable
    attributes = None if link.attributes is None else _items(link.attributes)
    return (_pack_context(link.context), attributes, _items(link.extras))


def _unpack_link(packed: Tuple[Any, ...]) -> Link:
    context, attributes, extras = packed
    return Link(
        context=_unpack_context(context),  # type: ignore[arg-type]  # as the Link held it
        attributes=None if attributes is None else dict(attributes),
        extras=dict(extras),
    )


def pack_span(span: Span) -> PackedSpan:
    """The packed form of ``span`` (the span itself, in a short tuple, when a part has an unexpected type)."""
    if type(span) is not Span:  # a subclass may carry more than the packed form holds
        return (span.attempt_id, span.sequence_id, span)
    status, resource, attributes, events, links, extras = (
        span.status,
        span.resource,
        span.attributes,
        span.events,
        span.links,
        span.extras,
    )
    if (
        type(status) is TraceStatus
        and type(status.extras) is dict
        and type(resource) is OtelResource
        and type(resource.attributes) is dict
        and type(attributes) is dict
        and type(events) is list
        and type(links) is list
        and type(extras) is dict
    ):
        trace_id = span.trace_id
        try:
            return (
                span.attempt_id,
                span.sequence_id,
                span.rollout_id,
                trace_id,
                span.span_id,
                span.parent_id,
                span.name,
                status.status_code,
                status.description,
                tuple(status.extras.items()) if status.extras else (),
                (*map(_pack_event, events),) if events else (),
                (*map(_pack_link, links),) if links else (),
                span.start_time,
                span.end_time,
                _pack_own_context(span.context, trace_id, span.span_id),
                _pack_own_context(span.parent, trace_id, span.parent_id),
                tuple(resource.attributes.items()) if resource.attributes else (),
                resource.schema_url,
                tuple(extras.items()) if extras else (),
                # keys then values in the tuple itself, not a tuple of items: a collection untracks a tuple only
                # once everything in it already is, and it sees an inner tuple after its outer one, so each level of
                # nesting costs one more collection (three levels deep, a packed span would stay tracked until a
                # full collection); the shared keys tuple was untracked long ago
                _shared_keys(attributes),
                *attributes.values(),
            )
        except _Unpackable:  # an event, link or context of another type
            pass
    return (span.attempt_id, span.sequence_id, span)


def unpack_span(packed: PackedSpan) -> Span:
    """A fresh span equal to the one packed (the very object, for a span kept as it is)."""
    if len(packed) == _RAW_LENGTH:
        return packed[2]  # type: ignore[no-any-return]
    (
        attempt_id,
        sequence_id,
        rollout_id,
        trace_id,
        span_id,
        parent_id,
        name,
        status_code,
        description,
        status_extras,
        events,
        links,
        start_time,
        end_time,
        context,
        parent,
        resource_attributes,
        schema_url,
        extras,
        attribute_keys,
        *attribute_values,
    ) = packed
    return _build_span(
        rollout_id,
        attempt_id,
        sequence_id,
        trace_id,
        span_id,
        parent_id,
        name,
        # the code was validated when the packed span was a TraceStatus
        _build_status(status_code, description, dict(status_extras) if status_extras else {}),
        dict(zip(attribute_keys, attribute_values)),  # noqa: B905  # packed together: same length
        [_unpack_event(e) for e in events] if events else [],
        [_unpack_link(link) for link in links] if links else [],
        start_time,
        end_time,
        _build_context(trace_id, span_id, False, {}, {}) if context is _OWN else _unpack_context(context),
        _build_context(trace_id, parent_id, False, {}, {}) if parent is _OWN else _unpack_context(parent),
        _build_resource(dict(resource_attributes) if resource_attributes else {}, schema_url),
        dict(extras) if extras else {},
    )


packed_sequence_id: Callable[[PackedSpan], Any] = itemgetter(1)
"""The ``sequence_id`` of a packed span (a sort key; an ``itemgetter``: no Python call per item)."""
