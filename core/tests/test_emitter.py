"""Emitters: attribute names, validation, propagate=False, readers, and behaviour without a trace context."""

from __future__ import annotations

import base64
import json
import warnings
from typing import Any, Dict, List

import pytest
from agentlightning.emitter import (
    NoActiveTracerWarning,
    emit_annotation,
    emit_exception,
    emit_message,
    emit_object,
    emit_reward,
    encode_object,
    find_final_reward,
    find_reward_spans,
    get_message_value,
    get_object_value,
    get_reward_value,
    get_rewards_from_span,
    is_reward_span,
    operation,
    reward,
)
from agentlightning.semconv import RewardDimension
from agentlightning.tracer.attributes import (
    extract_links_from_attributes,
    make_link_attributes,
    make_tag_attributes,
    query_linked_spans,
)
from agentlightning.tracer.base import clear_active_tracer, set_active_tracer
from agentlightning.tracer.dummy import DummyTracer
from agentlightning.types.tracer import Span, SpanCoreFields


class CollectingTracer(DummyTracer):
    """A DummyTracer that keeps what it creates, to observe propagate=True."""

    def __init__(self) -> None:
        super().__init__()
        self.created: List[SpanCoreFields] = []
        self.operations: List[Any] = []

    def create_span(
        self, name: str, attributes: Any = None, timestamp: Any = None, status: Any = None
    ) -> SpanCoreFields:
        span = super().create_span(name, attributes, timestamp, status)
        self.created.append(span)
        return span


@pytest.fixture
def tracer() -> Any:
    t = CollectingTracer()
    token = set_active_tracer(t)
    yield t
    clear_active_tracer()
    del token


def as_span(core: SpanCoreFields) -> Span:
    return Span.from_core_fields(core)


def test_scalar_reward(tracer: CollectingTracer) -> None:
    core = emit_reward(1)
    assert core.name == "agentlightning.annotation"
    assert core.attributes == {"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": 1.0}
    assert tracer.created == [core]
    assert get_rewards_from_span(as_span(core)) == [RewardDimension("primary", 1.0)]
    assert get_reward_value(as_span(core)) == 1.0


def test_multi_dimensional_reward_primary_first(tracer: CollectingTracer) -> None:
    core = emit_reward({"length": 0.2, "accuracy": 0.9, "style": 1}, primary_key="accuracy")
    dims = get_rewards_from_span(as_span(core))
    assert [d.name for d in dims] == ["accuracy", "length", "style"]
    assert get_reward_value(as_span(core)) == 0.9


def test_reward_with_links_and_tags(tracer: CollectingTracer) -> None:
    attrs: Dict[str, Any] = {**make_link_attributes({"span_id": "abc"}), **make_tag_attributes(["final", "math"])}
    core = emit_reward(0.5, attributes=attrs)
    assert core.attributes["agentlightning.link.0.key_match"] == "span_id"
    assert core.attributes["agentlightning.link.0.value_match"] == "abc"
    assert core.attributes["agentlightning.tag.1"] == "math"
    assert extract_links_from_attributes(core.attributes)[0].value_match == "abc"


def test_reward_validation() -> None:
    with pytest.raises(TypeError):
        emit_reward("high", propagate=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="primary_key"):
        emit_reward({"a": 1.0}, propagate=False)
    with pytest.raises(ValueError, match="primary_key"):
        emit_reward({"a": 1.0}, primary_key="b", propagate=False)
    with pytest.raises(ValueError, match="not numbers"):
        emit_reward({"a": 1.0, "b": "x"}, primary_key="a", propagate=False)  # type: ignore[dict-item]


def test_reward_propagate_false_with_extra_attributes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        core = emit_reward(2, attributes={"extra": {"k": [1, 2]}}, propagate=False)
    assert core.attributes["agentlightning.reward.0.value"] == 2.0
    assert isinstance(core.attributes["agentlightning.reward.0.value"], float)
    assert core.attributes["extra.k"] == [1, 2]


def test_legacy_and_agentops_rewards() -> None:
    agentops = Span.from_attributes(attributes={"agentops.task.output": json.dumps({"type": "reward", "value": 0.3})})
    agentops_dict = Span.from_attributes(attributes={"agentops.entity.output": {"type": "reward", "value": 0.4}})
    legacy = Span.from_attributes(attributes={"reward": 0.7}, name="agentlightning.annotation")
    plain = Span.from_attributes(attributes={"x": 1})
    with pytest.warns(DeprecationWarning):
        assert get_reward_value(agentops) == 0.3
    with pytest.warns(DeprecationWarning):
        assert get_reward_value(agentops_dict) == 0.4
    assert get_reward_value(legacy) == 0.7
    assert get_reward_value(plain) is None
    assert get_rewards_from_span(plain) == []
    spans = [legacy, plain, as_span(emit_reward(0.1, propagate=False)), plain]
    assert find_reward_spans(spans) == [legacy, spans[2]]
    assert is_reward_span(legacy) and not is_reward_span(plain)
    assert find_final_reward(spans) == 0.1
    assert find_final_reward([plain]) is None


def test_reward_decorator(tracer: CollectingTracer) -> None:
    @reward
    def grade(x: int) -> float:
        return x / 10

    assert grade(3) == 0.3
    assert get_reward_value(as_span(tracer.created[-1])) == 0.3


@pytest.mark.anyio
async def test_async_reward_decorator(tracer: CollectingTracer) -> None:
    @reward
    async def grade() -> float:
        return 1.0

    assert await grade() == 1.0
    assert len(tracer.created) == 1


def test_annotation(tracer: CollectingTracer) -> None:
    core = emit_annotation({"judge": {"model": "m", "scores": [1, 2]}, "ok": True})
    assert core.attributes == {"judge.model": "m", "judge.scores": [1, 2], "ok": True}
    with pytest.raises(ValueError, match="nothing"):
        emit_annotation({"nothing": None})
    with pytest.raises(ValueError, match="obj"):
        emit_annotation({"obj": object()})


def test_propagate_false_never_touches_the_active_tracer(tracer: CollectingTracer) -> None:
    emit_annotation({"a": 1}, propagate=False)
    emit_message("m", propagate=False)
    emit_object([1], propagate=False)
    emit_exception(ValueError("x"), propagate=False)
    assert tracer.created == []


def test_emitting_without_trace_context_warns_not_crashes() -> None:
    with pytest.warns(NoActiveTracerWarning, match="No active tracer") as record:
        core = emit_reward(1.0)
    assert record[0].filename == __file__  # points at the caller
    assert core.attributes["agentlightning.reward.0.value"] == 1.0
    with pytest.warns(NoActiveTracerWarning):
        emit_message("hello")
    with pytest.warns(NoActiveTracerWarning), operation(name="x") as op:
        op.set_output(1)
    assert op.span().attributes["agentlightning.operation.output"] == 1


def test_message(tracer: CollectingTracer) -> None:
    assert emit_message("hello", attributes={"lvl": "info"}) is None
    core = tracer.created[-1]
    assert core.name == "agentlightning.message"
    assert core.attributes == {"lvl": "info", "agentlightning.message.body": "hello"}
    assert get_message_value(as_span(core)) == "hello"
    with pytest.raises(TypeError):
        emit_message(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        get_message_value(Span.from_attributes(attributes={"agentlightning.message.body": 1}))
    assert get_message_value(Span.from_attributes(attributes={})) is None


def test_exception(tracer: CollectingTracer) -> None:
    try:
        raise KeyError("missing")
    except KeyError as exc:
        emit_exception(exc, attributes={"step": 2})
    core = tracer.created[-1]
    assert core.name == "agentlightning.exception"
    assert core.status.status_code == "OK"
    assert core.attributes["exception.type"] == "KeyError"
    assert core.attributes["exception.message"] == "'missing'"
    assert core.attributes["exception.escaped"] is True
    assert "Traceback" in core.attributes["exception.stacktrace"]
    assert core.attributes["step"] == 2
    with pytest.raises(TypeError):
        emit_exception("nope")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["text", 3, 2.5, True, False, b"\x00\xff", [1, "a"], {"k": [1, {"z": None}]}])
def test_object_round_trip(tracer: CollectingTracer, value: Any) -> None:
    core = emit_object(value)
    assert core.name == "agentlightning.object"
    decoded = get_object_value(as_span(core))
    assert decoded == value and type(decoded) is type(value)


def test_object_encoding_details() -> None:
    assert encode_object(b"ab") == {
        "agentlightning.object.type": "bytes",
        "agentlightning.object.literal": base64.b64encode(b"ab").decode(),
    }
    assert encode_object({"a": 1})["agentlightning.object.type"] == "dict"
    with pytest.raises(RuntimeError, match="not JSON serialisable"):
        encode_object(object())
    with pytest.raises(RuntimeError, match="valid JSON"):
        get_object_value(Span.from_attributes(attributes={"agentlightning.object.json": "{bad"}))
    with pytest.raises(RuntimeError, match="literal type"):
        get_object_value(
            Span.from_attributes(
                attributes={"agentlightning.object.type": "complex", "agentlightning.object.literal": "1j"}
            )
        )
    assert get_object_value(Span.from_attributes(attributes={})) is None


def test_operation_context_inputs_outputs() -> None:
    with operation(name="plan", propagate=False, team="a") as op:
        op.set_input(1, [1, 2], question={"text": "q"})
        op.set_output({"answer": 42, "steps": ["a", "b"]})
        with pytest.raises(RuntimeError):
            op.span()
    span = op.span()
    assert span.name == "agentlightning.operation"
    assert span.attributes == {
        "agentlightning.operation.name": "plan",
        "team": "a",
        "agentlightning.operation.input.args.0": 1,
        "agentlightning.operation.input.args.1": [1, 2],
        "agentlightning.operation.input.question.text": "q",
        "agentlightning.operation.output.answer": 42,
        "agentlightning.operation.output.steps": ["a", "b"],
    }
    assert span.status.status_code == "OK"


def test_operation_records_errors_and_unserialisable_output() -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing!"

    with pytest.raises(ZeroDivisionError), operation(propagate=False) as op:
        op.set_output(Thing())
        1 / 0  # noqa: B018
    span = op.span()
    assert span.status.status_code == "ERROR"
    assert span.status.description == "division by zero"
    assert span.attributes["agentlightning.operation.output"] == json.dumps("thing!")


def test_operation_argument_errors() -> None:
    with pytest.raises(ValueError, match="name="):
        operation("custom")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="Cannot specify both"):
        operation(name="a", **{"agentlightning.operation.name": "b"})


def test_operation_decorator_complex_signature() -> None:
    seen: List[Any] = []

    @operation(propagate=False)
    def f(a: int, /, b: int = 2, *args: int, c: str = "x", **kw: Any) -> int:
        return a + b + sum(args)

    assert f(1, 3, 4, 5, c="y", extra={"z": 1}) == 13

    @operation(propagate=False, name="custom")
    def g(x: int) -> Dict[str, int]:
        seen.append(x)
        return {"y": x}

    assert g(x=3) == {"y": 3}
    assert seen == [3]


def test_operation_decorator_records_the_call() -> None:
    spans: List[SpanCoreFields] = []

    class Keep(DummyTracer):
        def operation_context(
            self, name: str, attributes: Any = None, start_time: Any = None, end_time: Any = None
        ) -> Any:
            cm = super().operation_context(name, attributes, start_time, end_time)

            class Wrap:
                def __enter__(self_inner) -> Any:
                    self_inner.rec = cm.__enter__()
                    return self_inner.rec

                def __exit__(self_inner, *exc: Any) -> Any:
                    try:
                        return cm.__exit__(*exc)
                    finally:
                        spans.append(self_inner.rec.get_recorded_span())

            return Wrap()

    set_active_tracer(Keep())
    try:

        @operation
        def f(a: int, /, b: int = 2, *args: int, c: str = "x", **kw: Any) -> int:
            return a + b + sum(args)

        @operation(name="renamed")
        async def g(x: int) -> int:
            raise ValueError("bad")

        f(1, 3, 4, c="y", extra={"z": 1})
        import anyio

        with pytest.raises(ValueError):
            anyio.run(g, 1)
    finally:
        clear_active_tracer()
    first, second = spans
    assert first.attributes == {
        "agentlightning.operation.name": "f",
        "agentlightning.operation.input.a": 1,
        "agentlightning.operation.input.b": 3,
        "agentlightning.operation.input.args.0": 4,
        "agentlightning.operation.input.c": "y",
        "agentlightning.operation.input.kw.extra.z": 1,
        "agentlightning.operation.output": 8,
    }
    assert second.attributes["agentlightning.operation.name"] == "renamed"
    assert second.attributes["agentlightning.operation.input.x"] == 1
    assert second.status.status_code == "ERROR"
    assert second.status.description == "bad"


def test_operation_span_found_through_links() -> None:
    with operation(propagate=False, name="retrieve") as op:
        pass
    target = Span.from_core_fields(op.span())
    other = Span.from_attributes(attributes={"agentlightning.operation.name": "other"})
    reward_core = emit_reward(
        1.0, attributes=make_link_attributes({"agentlightning.operation.name": "retrieve"}), propagate=False
    )
    links = extract_links_from_attributes(reward_core.attributes)
    assert query_linked_spans([target, other], links) == [target]
    assert query_linked_spans(
        [target, other], extract_links_from_attributes(make_link_attributes({"span_id": target.span_id}))
    ) == [target]


def test_deprecated_reward_module() -> None:
    import importlib
    import sys

    sys.modules.pop("agentlightning.reward", None)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        module = importlib.import_module("agentlightning.reward")
    assert module.emit_reward is emit_reward
