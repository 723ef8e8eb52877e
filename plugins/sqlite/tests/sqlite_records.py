"""Record builders shared by the SQLite store tests (and their child processes)."""

from __future__ import annotations

import time

from agentlightning.types.core import Attempt, Rollout, RolloutConfig, Worker
from agentlightning.types.resources import PromptTemplate, ResourcesUpdate
from agentlightning.types.tracer import OtelResource, Span, SpanContext, TraceStatus


def make_rollout(rollout_id: str, status: str = "queuing", **extra: object) -> Rollout:
    return Rollout(
        rollout_id=rollout_id,
        input={"task": rollout_id, "nested": [1, 2.5, None, "x"]},
        start_time=time.time(),
        status=status,  # type: ignore[arg-type]
        config=RolloutConfig(max_attempts=2, retry_condition=["timeout"]),
        **extra,  # type: ignore[arg-type]
    )


def make_attempt(rollout_id: str, sequence_id: int, status: str = "preparing") -> Attempt:
    return Attempt(
        rollout_id=rollout_id,
        attempt_id=f"{rollout_id}-at{sequence_id}",
        sequence_id=sequence_id,
        start_time=time.time(),
        status=status,  # type: ignore[arg-type]
        worker_id="w1",
    )


def make_span(rollout_id: str, attempt_id: str, sequence_id: int, span_id: str = "", **attributes: object) -> Span:
    span_id = span_id or f"{sequence_id:016x}"
    return Span(
        rollout_id=rollout_id,
        attempt_id=attempt_id,
        sequence_id=sequence_id,
        trace_id="0" * 31 + "1",
        span_id=span_id,
        parent_id=None,
        name=f"span-{sequence_id}",
        status=TraceStatus(status_code="OK"),
        attributes={"k": "v", **attributes},  # type: ignore[dict-item]
        events=[],
        links=[],
        start_time=1.0,
        end_time=2.0,
        context=SpanContext(trace_id="0" * 31 + "1", span_id=span_id),
        parent=None,
        resource=OtelResource(attributes={"service.name": "test"}),
    )


def make_resources(resources_id: str, version: int = 1) -> ResourcesUpdate:
    return ResourcesUpdate(
        resources_id=resources_id,
        create_time=1.0,
        update_time=2.0,
        version=version,
        resources={"prompt": PromptTemplate(template="hi {x}", engine="f-string")},
    )


def make_worker(worker_id: str) -> Worker:
    return Worker(worker_id=worker_id, status="busy", heartbeat_stats={"cpu": 1})
