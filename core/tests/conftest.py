"""Shared fixtures for the tracing tests: a recording fake store, the OpenAI test server, an initialised OtelTracer."""

from __future__ import annotations

import threading
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import pytest
from agentlightning.testing.openai_server import OpenAITestServer


class RecordingStore:
    """Just the two span methods the tracer calls; records every call and the thread it ran on."""

    def __init__(self, fail: Optional[BaseException] = None) -> None:
        self.calls: List[Tuple[str, Any]] = []
        self.spans: List[Any] = []
        self.fail = fail
        self.threads: List[str] = []
        self._next = 0

    async def get_many_span_sequence_ids(self, pairs: Sequence[Tuple[str, str]]) -> List[int]:
        self.calls.append(("get_many_span_sequence_ids", list(pairs)))
        self.threads.append(threading.current_thread().name)
        if self.fail is not None:
            raise self.fail
        out = list(range(self._next, self._next + len(pairs)))
        self._next += len(pairs)
        return out

    async def add_many_spans(self, spans: Sequence[Any]) -> Sequence[Any]:
        self.calls.append(("add_many_spans", list(spans)))
        self.spans.extend(spans)
        return spans


@pytest.fixture
def recording_store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
def failing_store() -> RecordingStore:
    return RecordingStore(fail=RuntimeError("store down"))


@pytest.fixture
def openai_server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server


@pytest.fixture
def otel_tracer() -> Iterator[Any]:
    from agentlightning.tracer.otel import OtelTracer

    tracer = OtelTracer(flush_interval=0.02)
    tracer.init_worker(0)
    try:
        yield tracer
    finally:
        tracer.teardown_worker(0)


@pytest.fixture
def memory_store() -> Any:
    from agentlightning_memory import InMemoryLightningStore  # a test dependency of core: missing is an error

    return InMemoryLightningStore(watchdog_interval=None)
