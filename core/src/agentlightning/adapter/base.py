"""Adapters turn what a rollout recorded (spans) into what an algorithm trains on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, List, Sequence, TypeVar, Union

from agentlightning.types.tracer import Span

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["Adapter", "TraceAdapter", "OtelTraceAdapter", "as_spans"]

T_from = TypeVar("T_from")
T_to = TypeVar("T_to")


class Adapter(Generic[T_from, T_to]):
    """``adapter(source)`` is ``adapter.adapt(source)``."""

    def __call__(self, source: T_from) -> T_to:
        return self.adapt(source)

    def adapt(self, source: T_from) -> T_to:
        raise NotImplementedError(f"{type(self).__name__}.adapt is not implemented")


class TraceAdapter(Adapter[Sequence[Span], T_to], Generic[T_to]):
    """An adapter over stored spans."""


class OtelTraceAdapter(Adapter[Sequence["ReadableSpan"], T_to], Generic[T_to]):
    """An adapter over OpenTelemetry SDK spans."""


def as_spans(source: Sequence[Union[Span, ReadableSpan, Any]]) -> List[Span]:
    """Stored spans pass through; OpenTelemetry SDK spans are converted (ids ``"dummy"``, sequence 0)."""
    out: List[Span] = []
    for i, span in enumerate(source):
        if isinstance(span, Span):
            out.append(span)
        elif hasattr(span, "get_span_context") and hasattr(span, "attributes"):
            out.append(Span.from_opentelemetry(span, "dummy", "dummy", 0))
        else:
            raise TypeError(f"span {i} is a {type(span).__name__}, not an agentlightning Span or an OpenTelemetry span")
    return out
