"""The call pattern of upstream's runner, shared by ``store_workload.py`` (ours) and ``upstream_workload.py``.

``--span-mode runner`` in both scripts: per rollout a worker calls ``dequeue_rollout`` -> ``get_latest_resources`` ->
S x ``add_otel_span`` with an OpenTelemetry SDK ``ReadableSpan`` of ~2 KB attributes (no sequence id given: the store
allocates one, as upstream's runner and any OpenTelemetry-based tracer leave it) -> ``update_attempt(succeeded)``;
the algorithm polls ``wait_for_rollouts(timeout=0)`` over its pending rollouts and reads each finished rollout's
spans with ``query_spans`` at once. The measured window ends when the last rollout's spans are read.

Only the store API and the OpenTelemetry SDK are used here, so the same code runs against either package.
"""

from __future__ import annotations

import random
import time
from typing import Any, AsyncIterator, Dict, List, Sequence, Tuple, Type

import anyio

_BASES: Dict[int, str] = {}
_RESOURCE: List[Any] = []


def otel_attributes(i: int, size: int) -> Dict[str, Any]:
    """About ``size`` bytes of attributes: a unique payload string (fresh memory per span) and a few small fields;
    the payloads of every span mode, ours and upstream's."""
    base = _BASES.get(size)
    if base is None:
        base = _BASES[size] = "x" * max(1, size - 160)
    return {
        "gen_ai.prompt.0.role": "user",
        "gen_ai.response.model": "benchmark-model",
        "gen_ai.usage.prompt_tokens": 512,
        "step.index": i,
        "payload": f"{time.perf_counter_ns()}:{i}:" + base,
    }


def readable_spans(count: int, size: int) -> List[Any]:
    """``count`` finished OpenTelemetry SDK spans of one trace, as a ``SpanProcessor.on_end`` receives them.

    Their attributes are a plain mapping: the SDK's ``BoundedAttributes`` (the tracer checks every value when a span
    records it) would add ~12 us per span of the tracer's own cost to both sides alike; the store reads either.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

    if not _RESOURCE:
        _RESOURCE.append(Resource({"service.name": "agl-bench", "telemetry.sdk.language": "python"}))
        _RESOURCE.append(Status(StatusCode.OK))
        _RESOURCE.append(TraceFlags(1))
    resource, status, flags = _RESOURCE
    trace_id = random.getrandbits(128)
    root = SpanContext(trace_id, random.getrandbits(64), False, flags)
    spans = []
    for i in range(count):
        now = time.time_ns()
        spans.append(
            ReadableSpan(
                name=f"step-{i}",
                context=root if i == 0 else SpanContext(trace_id, random.getrandbits(64), False, flags),
                parent=None if i == 0 else root,
                resource=resource,
                attributes=otel_attributes(i, size),
                status=status,
                start_time=now,
                end_time=now + 1000,
            )
        )
    return spans


def prepare() -> None:
    """Import the OpenTelemetry SDK and make the spans' shared parts before the measured window: upstream's package
    imports the SDK when it is imported, ours only when spans are first made (a one-off ~50 ms, more where bytecode
    is not cached, that is no cost per rollout of either)."""
    readable_spans(1, 16)


async def dequeue_until_idle(store: Any, worker_id: str, lat: Dict[str, List[float]]) -> AsyncIterator[Any]:
    """The rollouts a worker dequeues (latencies into ``lat["dequeue"]``), until the queue stays empty for 4 polls
    10 ms apart."""
    idle_polls = 0
    while True:
        t0 = time.perf_counter()
        attempted = await store.dequeue_rollout(worker_id=worker_id)
        lat["dequeue"].append(time.perf_counter() - t0)
        if attempted is None:
            idle_polls += 1
            if idle_polls > 3:
                return
            await anyio.sleep(0.01)
            continue
        idle_polls = 0
        yield attempted


async def runner_worker(store: Any, worker_id: str, spans: int, size: int, lat: Dict[str, List[float]]) -> int:
    """Upstream's runner loop until the queue stays empty; returns the rollouts it finished."""
    done = 0
    async for attempted in dequeue_until_idle(store, worker_id, lat):
        rollout_id, attempt_id = attempted.rollout_id, attempted.attempt.attempt_id
        await store.get_latest_resources()
        for span in readable_spans(spans, size):
            t0 = time.perf_counter()
            await store.add_otel_span(rollout_id, attempt_id, span)
            lat["add_span"].append(time.perf_counter() - t0)
        await store.update_attempt(rollout_id, attempt_id, status="succeeded")
        done += 1
    return done


async def poll_and_read(
    store: Any, ids: Sequence[str], interval: float, timeout: float, evicted: Tuple[Type[BaseException], ...]
) -> Tuple[int, int]:
    """Poll ``wait_for_rollouts(timeout=0)`` over the pending ids, reading each finished rollout's spans at once.

    Returns (spans read, polls made); raises SystemExit when ``timeout`` seconds pass first.
    """
    pending = list(ids)
    spans = polls = 0
    deadline = time.perf_counter() + timeout
    while pending:
        polls += 1
        finished = await store.wait_for_rollouts(rollout_ids=pending, timeout=0)
        if not finished:
            if time.perf_counter() > deadline:
                raise SystemExit(f"{len(pending)} of {len(ids)} rollouts not finished within {timeout} s")
            await anyio.sleep(interval)
            continue
        done = set()
        for rollout in finished:
            done.add(rollout.rollout_id)
            try:
                spans += len(await store.query_spans(rollout.rollout_id))
            except evicted:
                pass
        pending = [i for i in pending if i not in done]
    return spans, polls
