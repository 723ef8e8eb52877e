"""Fixtures and helpers shared by the conformance test classes."""

from __future__ import annotations

import time
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable, ClassVar, Dict, List, Mapping, Optional

import anyio
import pytest

from agentlightning.store.base import LightningStore
from agentlightning.types.core import AttemptedRollout
from agentlightning.types.tracer import OtelResource, Span, SpanContext, TraceStatus

__all__ = [
    "StoreFactory",
    "StoreFixtures",
    "ManualClock",
    "make_span",
    "make_otel_span",
    "running_rollout",
    "rollout_ids",
    "poll",
    "WAKE_BOUND",
    "TIMEOUT_BOUND",
]

StoreFactory = Callable[..., Awaitable[LightningStore]]
"""``await store_factory(**options)``: a fresh, empty store (the suite closes it)."""

WAKE_BOUND = 1.0
"""Seconds within which a waiter must observe a completion (a generous upper bound, not a timing target)."""

TIMEOUT_BOUND = 5.0
"""Seconds within which a store must notice an overdue attempt, through a call's scan or a background thread."""


class ManualClock:
    """A clock that moves only when told: pass it as ``clock=`` to an engine store to drive timeouts."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move the clock forward; returns the new time."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward, got {seconds!r}")
        self.now += seconds
        return self.now


class StoreFixtures:
    """The ``make_store`` and ``store`` fixtures every conformance class uses, built on the ``store_factory`` fixture
    that the plugin defines (in its test class, its module or a conftest).

    ``store_options`` are passed to every ``store_factory`` call (a test's own options win).
    """

    store_options: ClassVar[Mapping[str, Any]] = {}

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: Any) -> str:
        """Every async test of the suite runs on asyncio and on trio: a store must work on both."""
        return str(request.param)

    @pytest.fixture
    async def make_store(self, store_factory: StoreFactory) -> AsyncIterator[StoreFactory]:
        """``await make_store(**options)``: a fresh store from ``store_factory``, closed at teardown."""
        created: List[LightningStore] = []

        async def make(**options: Any) -> LightningStore:
            store = await store_factory(**{**self.store_options, **options})
            if not isinstance(store, LightningStore):
                raise TypeError(f"store_factory must return a LightningStore, got {type(store).__name__}")
            created.append(store)
            return store

        try:
            yield make
        finally:
            for made in reversed(created):
                await made.close()

    @pytest.fixture
    async def store(self, make_store: StoreFactory) -> LightningStore:
        """A fresh store made with ``store_options``."""
        return await make_store()


def make_span(
    rollout_id: str,
    attempt_id: str,
    sequence_id: int,
    *,
    span_id: Optional[str] = None,
    trace_id: Optional[str] = None,
    parent_id: Optional[str] = None,
    name: str = "span",
    attributes: Optional[Dict[str, Any]] = None,
) -> Span:
    """A finished span with fresh (or the given) ids."""
    span_id = span_id or uuid.uuid4().hex[:16]
    trace_id = trace_id or uuid.uuid4().hex
    return Span(
        rollout_id=rollout_id,
        attempt_id=attempt_id,
        sequence_id=sequence_id,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name=name,
        status=TraceStatus(status_code="OK"),
        attributes=dict(attributes or {}),
        events=[],
        links=[],
        start_time=1700000000.0,
        end_time=1700000001.0,
        context=SpanContext(trace_id=trace_id, span_id=span_id),
        parent=SpanContext(trace_id=trace_id, span_id=parent_id) if parent_id else None,
        resource=OtelResource(attributes={"service.name": "suite"}),
    )


def make_otel_span(name: str = "otel") -> Any:
    """A finished OpenTelemetry SDK span (a ``ReadableSpan``) from a private tracer provider."""
    from opentelemetry.sdk.trace import TracerProvider

    span = TracerProvider().get_tracer("agentlightning.testing").start_span(name, attributes={"k": "v"})
    span.end()
    return span


async def running_rollout(store: LightningStore, **kwargs: Any) -> AttemptedRollout:
    """Enqueue a rollout (``kwargs`` go to ``enqueue_rollout``) and claim it."""
    await store.enqueue_rollout({"task": 1}, **kwargs)
    claimed = await store.dequeue_rollout()
    assert claimed is not None
    return claimed


def rollout_ids(items: Any) -> List[str]:
    return [item.rollout_id for item in items]


async def poll(predicate: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.05) -> bool:
    """Await ``predicate`` every ``interval`` seconds until true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if await predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        await anyio.sleep(interval)
