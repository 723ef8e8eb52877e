"""``OtelTracer``: OpenTelemetry SDK spans, batched into the store off the agent's hot path.

How spans travel:

1. ``trace_context(rollout_id=..., attempt_id=...)`` opens a :class:`TraceState` and makes it current in a
   :class:`contextvars.ContextVar`, so concurrent rollouts in one process keep their spans apart.
2. :class:`LightningSpanProcessor` (one per tracer, *added* to the global SDK ``TracerProvider``; an application's
   own provider and exporters keep working) ties each starting span to the current state, or to its parent's state,
   and queues it when it ends. Spans outside any trace context of this tracer are left alone.
3. A daemon thread (:class:`SpanFlusher`) wakes every ``flush_interval`` seconds, or when ``batch_size`` spans are
   queued, reserves sequence ids with ``store.get_many_span_sequence_ids`` and writes the batch with
   ``store.add_many_spans``. The store calls run on the event loop that opened the trace context (through
   ``anyio.from_thread.run``), so stores bound to a loop work, under asyncio and trio.
4. When the trace context exits, the remaining spans are flushed before the ``async with`` returns.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Dict, Iterator, List, Optional, Sequence, Set, Union

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import attrs
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import Status
from opentelemetry.trace import StatusCode as OtelStatusCode

from agentlightning.types.core import StatusCode
from agentlightning.types.tracer import Span, SpanCoreFields, TraceStatus, convert_timestamp

from .attributes import sanitize_attributes
from .base import Tracer, as_trace_status, open_trace_context_count, with_active_tracer_context

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span as SdkSpan

    from agentlightning.store.base import LightningStore

__all__ = ["OtelTracer", "LightningSpanProcessor", "SpanFlusher", "TraceState", "OtelSpanRecordingContext"]

logger = logging.getLogger(__name__)

_OTEL_STATUS = {"OK": OtelStatusCode.OK, "ERROR": OtelStatusCode.ERROR, "UNSET": OtelStatusCode.UNSET}
_FROM_OTEL: Dict[OtelStatusCode, StatusCode] = {v: k for k, v in _OTEL_STATUS.items()}  # type: ignore[misc]


ROLLOUT_ID_KEY = "agentlightning.rollout_id"
ATTEMPT_ID_KEY = "agentlightning.attempt_id"


def _ns(seconds: Optional[float]) -> Optional[int]:
    return None if seconds is None else int(seconds * 1e9)


class TraceState:
    """The spans of one open trace context: queued ones, and those already converted (stored or kept locally)."""

    def __init__(
        self,
        processor: LightningSpanProcessor,
        store: Optional[LightningStore],
        rollout_id: Optional[str],
        attempt_id: Optional[str],
        token: Any,
    ) -> None:
        self.processor = processor
        self.store = store
        self.rollout_id = rollout_id
        self.attempt_id = attempt_id
        self.token = token
        # A store served over the wire gets the ids on each span's resource too, as upstream's OTLP export sends them
        self.tag_resource = bool((getattr(store, "capabilities", None) or {}).get("otlp_traces"))
        self.spans: List[Span] = []
        self.failed_batches = 0
        self._pending: List[ReadableSpan] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._local_seq = itertools.count()

    def enqueue(self, span: ReadableSpan) -> int:
        with self._lock:
            self._pending.append(span)
            return len(self._pending)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch being written."""
        return self.pending == 0 and not self._flush_lock.locked()

    def _local(self, batch: Sequence[ReadableSpan]) -> List[Span]:
        rollout = self.rollout_id or "rollout-dummy"
        attempt = self.attempt_id or "attempt-dummy"
        return [Span.from_opentelemetry(s, rollout, attempt, next(self._local_seq)) for s in batch]

    def _tag_resources(self, spans: List[Span]) -> None:
        ids = {ROLLOUT_ID_KEY: self.rollout_id, ATTEMPT_ID_KEY: self.attempt_id}
        for span in spans:
            span.resource = attrs.evolve(span.resource, attributes={**span.resource.attributes, **ids})

    def flush(self) -> None:
        """Write every queued span (called from the flusher thread or a worker thread, never the event loop)."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            if self.store is None or self.rollout_id is None or self.attempt_id is None:
                self.spans.extend(self._local(batch))
                return
            converted: List[Span] = []
            try:
                key = (self.rollout_id, self.attempt_id)
                seqs = anyio.from_thread.run(
                    self.store.get_many_span_sequence_ids, [key] * len(batch), token=self.token
                )
                converted = [
                    Span.from_opentelemetry(s, self.rollout_id, self.attempt_id, int(q))
                    for s, q in zip(batch, seqs, strict=True)
                ]
                if self.tag_resource:
                    self._tag_resources(converted)
                anyio.from_thread.run(self.store.add_many_spans, converted, token=self.token)
                self.spans.extend(converted)
            except Exception:
                self.failed_batches += 1
                logger.exception(
                    "Could not write %d spans of rollout %s attempt %s to the store; they are kept in get_last_trace()",
                    len(batch),
                    self.rollout_id,
                    self.attempt_id,
                )
                self.spans.extend(converted or self._local(batch))


_CURRENT_STATE: contextvars.ContextVar[Optional[TraceState]] = contextvars.ContextVar(
    "agentlightning_trace_state", default=None
)


class SpanFlusher:
    """A daemon thread that flushes the queued spans of every open trace context, in batches."""

    def __init__(self, flush_interval: float = 0.05) -> None:
        self.flush_interval = flush_interval
        self._states: Set[TraceState] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="agl-span-flusher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def only_state(self) -> Optional[TraceState]:
        """The open trace context, when it is the only one."""
        with self._lock:
            return next(iter(self._states)) if len(self._states) == 1 else None

    def add(self, state: TraceState) -> None:
        with self._lock:
            self._states.add(state)

    def remove(self, state: TraceState) -> None:
        with self._lock:
            self._states.discard(state)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            with self._lock:
                states = list(self._states)
            for state in states:
                try:
                    state.flush()
                except Exception:  # flush already logs store errors; this guards the thread itself
                    logger.exception("span flusher: unexpected error")


class LightningSpanProcessor(SpanProcessor):
    """Queues the spans that belong to this tracer's open trace contexts; the flusher writes them."""

    def __init__(self, flusher: SpanFlusher, batch_size: int = 64) -> None:
        self.flusher = flusher
        self.batch_size = batch_size
        self.enabled = True
        self._owner: Dict[int, TraceState] = {}

    def on_start(self, span: SdkSpan, parent_context: Optional[Context] = None) -> None:
        if not self.enabled or span.context is None:
            return
        state = _CURRENT_STATE.get()
        if state is None or state.processor is not self:
            parent = span.parent
            state = self._owner.get(parent.span_id) if parent is not None else None
        if state is None and open_trace_context_count() == 1:
            state = self.flusher.only_state()  # a thread without our context while one rollout runs
        if state is not None:
            self._owner[span.context.span_id] = state

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None:
            return
        state = self._owner.pop(ctx.span_id, None)
        if state is None or not ctx.trace_flags.sampled:
            return
        if state.enqueue(span) >= self.batch_size:
            self.flusher.wake()

    def forget(self, state: TraceState) -> None:
        """Drop the unfinished spans of a closed trace context (a span ending later is not part of it)."""
        for span_id in [k for k, v in list(self._owner.items()) if v is state]:
            self._owner.pop(span_id, None)

    def shutdown(self) -> None:
        self.enabled = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def __reduce__(self) -> Any:
        raise TypeError("LightningSpanProcessor cannot be pickled: it holds threads and live spans")


class OtelSpanRecordingContext:
    """:class:`~agentlightning.types.SpanRecordingContext` over a live SDK span."""

    def __init__(self, span: Any) -> None:
        self._span = span

    def record_exception(self, exception: BaseException) -> None:
        self._span.record_exception(exception)

    def record_attributes(self, attributes: Dict[str, Any]) -> None:
        self._span.set_attributes(sanitize_attributes(attributes))

    def record_status(self, status_code: StatusCode, description: Optional[str] = None) -> None:
        self._span.set_status(Status(_OTEL_STATUS[status_code], description if status_code == "ERROR" else None))

    def get_recorded_span(self) -> SpanCoreFields:
        span = self._span
        code: StatusCode = _FROM_OTEL.get(span.status.status_code, "UNSET") if span.status is not None else "UNSET"
        return SpanCoreFields(
            name=span.name,
            status=TraceStatus(status_code=code, description=span.status.description if span.status else None),
            attributes=dict(span.attributes or {}),
            start_time=convert_timestamp(span.start_time),
            end_time=convert_timestamp(span.end_time),
        )


class OtelTracer(Tracer):
    """The OpenTelemetry tracer.

    Args:
        tracer_provider: the SDK provider to attach to; default: the global one, or a new SDK provider installed
            globally when the application has not set one.
        batch_size: queued spans that wake the flusher early.
        flush_interval: seconds between background flushes.
        flush_timeout: how long the exit of a trace context waits for the last spans to reach the store.
        instrument: while a worker is initialised, patch every supported LLM client (openai chat completions and
            Responses, anthropic, litellm, google-genai), each when it is first imported, so that its calls become
            LLM spans (see :mod:`agentlightning.instrumentation.auto`).
    """

    def __init__(
        self,
        *,
        tracer_provider: Optional[TracerProvider] = None,
        batch_size: int = 64,
        flush_interval: float = 0.05,
        flush_timeout: float = 30.0,
        instrument: bool = True,
    ) -> None:
        super().__init__()
        self.instrument = instrument
        self._instrumented = False
        if batch_size < 1:
            raise ValueError(f"OtelTracer batch_size must be >= 1, got {batch_size}")
        self._requested_provider = tracer_provider
        self._provider: Optional[TracerProvider] = None
        self._flusher = SpanFlusher(flush_interval)
        self._processor: Optional[LightningSpanProcessor] = None
        self._batch_size = batch_size
        self.flush_timeout = flush_timeout
        self._last_trace: List[Span] = []

    # -- lifecycle -------------------------------------------------------------------------------------------

    @staticmethod
    def _global_sdk_provider() -> TracerProvider:
        provider = trace_api.get_tracer_provider()
        if isinstance(provider, TracerProvider):
            return provider
        trace_api.set_tracer_provider(TracerProvider())
        provider = trace_api.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            raise RuntimeError(
                f"The global OpenTelemetry tracer provider is a {type(provider).__name__}, not an SDK "
                "TracerProvider; pass OtelTracer(tracer_provider=...) an opentelemetry.sdk TracerProvider"
            )
        return provider

    @property
    def tracer_provider(self) -> Optional[TracerProvider]:
        return self._provider

    @property
    def processor(self) -> Optional[LightningSpanProcessor]:
        return self._processor

    def init_worker(self, worker_id: int, store: Optional[LightningStore] = None) -> None:
        super().init_worker(worker_id, store)
        if self._processor is None:
            self._provider = self._requested_provider or self._global_sdk_provider()
            self._processor = LightningSpanProcessor(self._flusher, self._batch_size)
            self._provider.add_span_processor(self._processor)
        self._processor.enabled = True
        self._flusher.start()
        if self.instrument and not self._instrumented:
            from agentlightning.instrumentation.auto import instrument_all

            instrument_all()  # each LLM library when it is first imported
            self._instrumented = True

    def teardown_worker(self, worker_id: int) -> None:
        super().teardown_worker(worker_id)
        if self._processor is not None:
            self._processor.enabled = False  # a provider cannot drop a processor; this one goes quiet
        self._flusher.stop()
        if self._instrumented:
            from agentlightning.instrumentation.auto import uninstrument_all

            uninstrument_all()
            self._instrumented = False

    def get_otel_tracer(self) -> trace_api.Tracer:
        if self._provider is None:
            raise RuntimeError("OtelTracer.init_worker() must be called before tracing")
        return self._provider.get_tracer("agentlightning")

    # -- trace contexts --------------------------------------------------------------------------------------

    @with_active_tracer_context
    @contextlib.asynccontextmanager
    async def trace_context(
        self,
        name: Optional[str] = None,
        *,
        store: Optional[LightningStore] = None,
        rollout_id: Optional[str] = None,
        attempt_id: Optional[str] = None,
    ) -> AsyncIterator[trace_api.Tracer]:
        """Collect the spans of one attempt; they are all in ``store`` when the ``async with`` exits.

        Give both ``rollout_id`` and ``attempt_id`` (spans go to ``store``, or the store given to
        ``init_worker``), or neither (spans are only kept for :meth:`get_last_trace`).
        """
        processor = self._processor
        if processor is None or not processor.enabled:
            raise RuntimeError("OtelTracer.init_worker() must be called before trace_context()")
        if (rollout_id is None) != (attempt_id is None):
            raise ValueError("trace_context needs both rollout_id and attempt_id, or neither")
        target = store if store is not None else self._store
        if rollout_id is not None and target is None:
            raise ValueError(
                "trace_context(rollout_id=..., attempt_id=...) needs a store: pass store= or init_worker(store=...)"
            )
        state = TraceState(processor, target if rollout_id else None, rollout_id, attempt_id, _current_token())
        token = _CURRENT_STATE.set(state)
        self._flusher.add(state)
        try:
            yield self.get_otel_tracer()
        finally:
            try:
                _CURRENT_STATE.reset(token)
            except ValueError:
                _CURRENT_STATE.set(None)
            try:
                await self._final_flush(state)
            finally:
                self._flusher.remove(state)
                processor.forget(state)
                self._last_trace = state.spans

    async def _final_flush(self, state: TraceState) -> None:
        if state.idle:
            return
        with anyio.move_on_after(self.flush_timeout, shield=True) as scope:
            await anyio.to_thread.run_sync(state.flush, abandon_on_cancel=True)
        if scope.cancelled_caught:
            logger.error(
                "Spans of rollout %s attempt %s did not reach the store within %.1f s",
                state.rollout_id,
                state.attempt_id,
                self.flush_timeout,
            )

    def get_last_trace(self) -> List[Span]:
        state = _CURRENT_STATE.get()
        if state is not None and state.processor is self._processor:
            return list(state.spans)
        return list(self._last_trace)

    # -- spans -----------------------------------------------------------------------------------------------

    def create_span(
        self,
        name: str,
        attributes: Optional[Dict[str, Any]] = None,
        timestamp: Optional[float] = None,
        status: Union[StatusCode, TraceStatus, None] = None,
    ) -> SpanCoreFields:
        ts = timestamp if timestamp is not None else time.time()
        span = self.get_otel_tracer().start_span(
            name, attributes=sanitize_attributes(attributes or {}), start_time=_ns(ts)
        )
        recording = OtelSpanRecordingContext(span)
        trace_status = as_trace_status(status)
        recording.record_status(trace_status.status_code, trace_status.description)
        span.end(end_time=_ns(ts))
        return recording.get_recorded_span()

    @contextlib.contextmanager
    def operation_context(
        self,
        name: str,
        attributes: Optional[Dict[str, Any]] = None,
        start_time: Optional[float] = None,
        end_time: Optional[float] = None,
    ) -> Iterator[OtelSpanRecordingContext]:
        if end_time is not None:
            logger.warning("OtelTracer.operation_context ignores end_time; the span ends with the with block")
        with self.get_otel_tracer().start_as_current_span(
            name,
            attributes=sanitize_attributes(attributes or {}),
            start_time=_ns(start_time),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            recording = OtelSpanRecordingContext(span)
            try:
                yield recording
            except BaseException as exc:
                recording.record_exception(exc)
                recording.record_status("ERROR", str(exc))
                raise


def _current_token() -> Any:
    try:
        return anyio.lowlevel.current_token()
    except RuntimeError:  # pragma: no cover - trace_context always runs inside an event loop
        return None
