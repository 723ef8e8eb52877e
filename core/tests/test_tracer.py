"""Tracer base, DummyTracer, the active tracer and the attribute helpers."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from agentlightning.emitter import emit_reward
from agentlightning.tracer import DummyTracer, NoopTracer, get_active_tracer
from agentlightning.tracer.attributes import (
    filter_and_unflatten_attributes,
    flatten_attributes,
    sanitize_attribute_value,
    unflatten_attributes,
)
from agentlightning.tracer.base import clear_active_tracer, set_active_tracer
from hypothesis import given
from hypothesis import strategies as st


def test_dummy_create_span_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 123.0)
    span = DummyTracer().create_span("x")
    assert (span.start_time, span.end_time, span.attributes, span.status.status_code) == (123.0, 123.0, {}, "OK")
    span = DummyTracer().create_span("y", {"a": 1}, timestamp=5.0, status="ERROR")
    assert (span.start_time, span.attributes, span.status.status_code) == (5.0, {"a": 1}, "ERROR")


def test_dummy_operation_context() -> None:
    tracer = DummyTracer()
    with tracer.operation_context("op", {"a": 1}, start_time=1.0) as ctx:
        ctx.record_attributes({"b": 2})
        with pytest.raises(ValueError, match="has not finished"):
            ctx.get_recorded_span()
    span = ctx.get_recorded_span()
    assert span.start_time == 1.0 and span.end_time is not None and span.end_time >= 1.0
    assert span.attributes == {"a": 1, "b": 2}
    with pytest.raises(RuntimeError), tracer.operation_context("bad") as failing:
        raise RuntimeError("boom")
    recorded = failing.get_recorded_span()
    assert recorded.status.status_code == "ERROR" and recorded.status.description == "boom"
    assert recorded.attributes["exception.type"] == "RuntimeError"


def test_active_tracer_set_raise_clear() -> None:
    assert get_active_tracer() is None
    tracer = DummyTracer()
    set_active_tracer(tracer)
    try:
        assert get_active_tracer() is tracer
        with pytest.raises(ValueError, match="already set"):
            set_active_tracer(DummyTracer())
    finally:
        clear_active_tracer()
    assert get_active_tracer() is None


@pytest.mark.anyio
async def test_noop_trace_context_makes_emitters_quiet() -> None:
    tracer = NoopTracer()
    async with tracer.trace_context("dev", rollout_id="r", attempt_id="a"):
        assert get_active_tracer() is tracer
        emit_reward(1.0)  # no warning: filterwarnings=error would fail on NoActiveTracerWarning? it is a UserWarning
    assert get_active_tracer() is None
    assert tracer.get_last_trace() == []


@pytest.mark.anyio
async def test_active_tracer_is_per_task() -> None:
    seen = {}

    async def run(name: str) -> None:
        tracer = DummyTracer()
        async with tracer.trace_context(name):
            await anyio.sleep(0.01)
            seen[name] = get_active_tracer() is tracer

    async with anyio.create_task_group() as tg:
        for name in "abc":
            tg.start_soon(run, name)
    assert seen == {"a": True, "b": True, "c": True}


def test_lifespan_runs_the_steps() -> None:
    calls = []

    class T(DummyTracer):
        def init(self, *a: Any, **k: Any) -> None:
            calls.append("init")

        def init_worker(self, worker_id: int, store: Any = None) -> None:
            calls.append(("init_worker", worker_id, store))

        def teardown_worker(self, worker_id: int) -> None:
            calls.append("teardown_worker")

        def teardown(self, *a: Any, **k: Any) -> None:
            calls.append("teardown")

    with T().lifespan(store="S"):
        pass
    assert calls == ["init", ("init_worker", 0, "S"), "teardown_worker", "teardown"]


def test_flatten_examples() -> None:
    assert flatten_attributes({"a": {"b": 1, "c": [2, 3]}}) == {"a.b": 1, "a.c": [2, 3]}
    assert flatten_attributes({"a": {"c": [2, 3]}}, expand_leaf_lists=True) == {"a.c.0": 2, "a.c.1": 3}
    assert flatten_attributes({"m": [{"x": 1}, {"x": 2}]}) == {"m.0.x": 1, "m.1.x": 2}
    assert flatten_attributes(5) == {"": 5}
    with pytest.raises(ValueError, match="string keys"):
        flatten_attributes({1: 2})
    assert unflatten_attributes({}) == {}
    assert unflatten_attributes({"a": 1, "a.b": 2}) == {"a": {"b": 2}}  # nested wins
    with pytest.raises(ValueError):
        filter_and_unflatten_attributes({"p": 1}, "p")
    assert sanitize_attribute_value([1, True]) == [1, 1]
    assert sanitize_attribute_value([1, 2.5]) == [1.0, 2.5]
    assert sanitize_attribute_value({"a": None}) == '{"a": null}'


_keys = st.text(alphabet="abcxyz", min_size=1, max_size=4)
_leaves = st.one_of(st.integers(-5, 5), st.text(alphabet="pq", max_size=3), st.booleans())
_trees = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.dictionaries(_keys, children, min_size=1, max_size=3), st.lists(children, min_size=1, max_size=3)
    ),
    max_leaves=12,
)


@given(st.dictionaries(_keys, _trees, min_size=1, max_size=4))
def test_flatten_unflatten_round_trip(data: dict) -> None:
    assert unflatten_attributes(flatten_attributes(data, expand_leaf_lists=True)) == data
