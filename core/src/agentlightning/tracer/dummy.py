"""A tracer that records nothing: for dev runs and for emitters called with ``propagate=False``."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Dict, Iterator, List, Optional, Union

from agentlightning.types.core import StatusCode
from agentlightning.types.tracer import Span, SpanCoreFields, TraceStatus

from .attributes import format_exception_attributes
from .base import Tracer, as_trace_status, with_active_tracer_context

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

__all__ = ["DummyTracer", "NoopTracer", "DummySpanRecordingContext"]


class DummySpanRecordingContext:
    """Collects what an operation records, without any backend."""

    def __init__(self, name: str, attributes: Optional[Dict[str, Any]] = None, start_time: Optional[float] = None):
        self.name = name
        self.attributes: Dict[str, Any] = dict(attributes or {})
        self.start_time = start_time if start_time is not None else time.time()
        self.end_time: Optional[float] = None
        self.status = TraceStatus(status_code="OK")

    def record_exception(self, exception: BaseException) -> None:
        self.attributes.update(format_exception_attributes(exception))

    def record_attributes(self, attributes: Dict[str, Any]) -> None:
        self.attributes.update(attributes)

    def record_status(self, status_code: StatusCode, description: Optional[str] = None) -> None:
        self.status = TraceStatus(status_code=status_code, description=description)

    def finalize(self, end_time: Optional[float] = None) -> None:
        self.end_time = end_time if end_time is not None else time.time()

    def get_recorded_span(self) -> SpanCoreFields:
        if self.end_time is None:
            raise ValueError(f"operation {self.name!r} has not finished; its span is available after the with block")
        return SpanCoreFields(
            name=self.name,
            status=self.status,
            attributes=dict(self.attributes),
            start_time=self.start_time,
            end_time=self.end_time,
        )


class DummyTracer(Tracer):
    """Backend-free: spans are built and returned but never stored. Its trace context only makes it active."""

    def create_span(
        self,
        name: str,
        attributes: Optional[Dict[str, Any]] = None,
        timestamp: Optional[float] = None,
        status: Union[StatusCode, TraceStatus, None] = None,
    ) -> SpanCoreFields:
        ts = timestamp if timestamp is not None else time.time()
        return SpanCoreFields(
            name=name, status=as_trace_status(status), attributes=dict(attributes or {}), start_time=ts, end_time=ts
        )

    @contextlib.contextmanager
    def operation_context(
        self,
        name: str,
        attributes: Optional[Dict[str, Any]] = None,
        start_time: Optional[float] = None,
        end_time: Optional[float] = None,
    ) -> Iterator[DummySpanRecordingContext]:
        ctx = DummySpanRecordingContext(name, attributes, start_time)
        try:
            yield ctx
        except BaseException as exc:
            ctx.record_status("ERROR", str(exc))
            ctx.record_exception(exc)
            raise
        finally:
            ctx.finalize(end_time)

    @with_active_tracer_context
    @contextlib.asynccontextmanager
    async def trace_context(
        self,
        name: Optional[str] = None,
        *,
        store: Optional[LightningStore] = None,
        rollout_id: Optional[str] = None,
        attempt_id: Optional[str] = None,
    ) -> AsyncIterator[DummyTracer]:
        yield self

    def get_last_trace(self) -> List[Span]:
        return []


NoopTracer = DummyTracer
