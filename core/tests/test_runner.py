"""LitAgentRunner against a real in-memory store: dispatch, result rules, hooks, limits, heartbeats, failures."""

from __future__ import annotations

from typing import Any, AsyncIterator, List

import agentlightning as agl
import anyio
import anyio.lowlevel
import pytest
from agentlightning.execution.events import ThreadingEvent
from agentlightning.litagent import LitAgent
from agentlightning.runner import Hook, LitAgentRunner
from agentlightning.tracer.dummy import DummyTracer
from agentlightning.tracer.otel import OtelTracer
from agentlightning.types import LLM, PromptTemplate, Span
from opentelemetry.sdk.trace import TracerProvider

pytestmark = pytest.mark.anyio

RESOURCES = {"llm": LLM(endpoint="http://127.0.0.1:9/v1", model="m")}


@pytest.fixture
async def store() -> AsyncIterator[Any]:
    from agentlightning_memory import InMemoryLightningStore

    async with InMemoryLightningStore(watchdog_interval=None) as s:
        await s.add_resources(RESOURCES)
        yield s


def make_runner(tracer: Any = None, **kwargs: Any) -> LitAgentRunner:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("interval_jitter", 0.0)
    kwargs.setdefault("heartbeat_interval", 0)
    return LitAgentRunner(tracer=tracer or DummyTracer(), **kwargs)


async def run_one(store: Any, agent: LitAgent[Any], *, tracer: Any = None, mode: Any = "train", task: Any = "t") -> Any:
    runner = make_runner(tracer, max_rollouts=1)
    rollout = await store.enqueue_rollout(task, mode=mode)
    with runner.run_context(agent=agent, store=store):
        await runner.iter()
    return await store.get_rollout_by_id(rollout.rollout_id)


async def reward_of(store: Any, rollout_id: str) -> Any:
    return agl.find_final_reward(list(await store.query_spans(rollout_id)))


async def test_float_result_becomes_one_reward_span(store: Any) -> None:
    rollout = await run_one(store, agl.rollout(lambda task, llm: 0.75))
    assert rollout.status == "succeeded"
    spans = list(await store.query_spans(rollout.rollout_id))
    assert [s.name for s in spans] == ["agentlightning.annotation"]
    assert spans[0].attributes["agentlightning.reward.0.value"] == 0.75


async def test_bool_result_is_converted_with_a_warning(store: Any, caplog: Any) -> None:
    rollout = await run_one(store, agl.rollout(lambda task, llm: True))
    assert await reward_of(store, rollout.rollout_id) == 1.0
    assert "Reward is not a number" in caplog.text


async def test_none_result_keeps_the_spans_the_tracer_recorded(store: Any) -> None:
    def body(task: str, llm: LLM) -> None:
        agl.emit_message("hello")
        agl.emit_reward(0.25)

    tracer = OtelTracer(tracer_provider=TracerProvider())
    rollout = await run_one(store, agl.rollout(body), tracer=tracer)
    spans = list(await store.query_spans(rollout.rollout_id))
    assert len(spans) == 2 and await reward_of(store, rollout.rollout_id) == 0.25


async def test_async_agent_emits_into_its_own_trace(store: Any) -> None:
    async def body(task: str, llm: LLM) -> float:
        agl.emit_message(task)
        await anyio.lowlevel.checkpoint()
        return 0.5

    tracer = OtelTracer(tracer_provider=TracerProvider())
    rollout = await run_one(store, agl.rollout(body), tracer=tracer)
    names = [s.name for s in await store.query_spans(rollout.rollout_id)]
    assert len(names) == 2 and await reward_of(store, rollout.rollout_id) == 0.5


async def test_span_core_fields_and_span_lists_are_stored(store: Any) -> None:
    def cores(task: str, llm: LLM) -> List[Any]:
        return [agl.emit_reward(0.1, propagate=False), agl.emit_reward(0.9, propagate=False)]

    rollout = await run_one(store, agl.rollout(cores))
    values = [agl.get_reward_value(s) for s in await store.query_spans(rollout.rollout_id)]
    assert values == [0.1, 0.9]

    def spans(task: str, llm: LLM, rollout: Any) -> List[Span]:
        core = agl.emit_reward(0.3, propagate=False)
        return [
            Span.from_core_fields(
                core, rollout_id=rollout.rollout_id, attempt_id=rollout.attempt.attempt_id, sequence_id=1
            )
        ]

    rollout = await run_one(store, agl.rollout(spans))
    assert await reward_of(store, rollout.rollout_id) == 0.3


async def test_readable_span_list_goes_through_add_otel_span(store: Any) -> None:
    provider = TracerProvider()

    def body(task: str, llm: LLM) -> List[Any]:
        with provider.get_tracer("t").start_as_current_span("work") as span:
            pass
        return [span]

    rollout = await run_one(store, agl.rollout(body))
    assert [s.name for s in await store.query_spans(rollout.rollout_id)] == ["work"]


@pytest.mark.parametrize("bad", [{"reward": 1}, "text", [1, "x"]])
async def test_wrong_result_types_fail_the_attempt(store: Any, bad: Any, caplog: Any) -> None:
    rollout = await run_one(store, agl.rollout(lambda task, llm: bad))
    assert rollout.status == "failed"
    assert "Invalid raw result type" in caplog.text


async def test_empty_list_is_accepted(store: Any) -> None:
    rollout = await run_one(store, agl.rollout(lambda task, llm: []))
    assert rollout.status == "succeeded"


async def test_agent_exception_fails_the_attempt_and_step_reraises(store: Any) -> None:
    def boom(task: str, llm: LLM) -> None:
        raise KeyError("nope")

    rollout = await run_one(store, agl.rollout(boom))
    assert rollout.status == "failed"
    runner = make_runner()
    with runner.run_context(agent=agl.rollout(boom), store=store):
        with pytest.raises(KeyError):
            await runner.step("t")


class ModeAgent(LitAgent[str]):
    def training_rollout(self, task: str, resources: Any, rollout: Any) -> float:
        return 1.0

    async def validation_rollout_async(self, task: str, resources: Any, rollout: Any) -> float:
        return 0.0


class SyncModeAgent(LitAgent[str]):
    def training_rollout(self, task: str, resources: Any, rollout: Any) -> float:
        return 1.0

    def validation_rollout(self, task: str, resources: Any, rollout: Any) -> float:
        return 0.0


@pytest.mark.parametrize(("mode", "expected"), [("train", 1.0), ("val", 0.0), ("test", 0.0), (None, 0.0)])
async def test_train_mode_uses_training_rollout_and_every_other_mode_validation(
    store: Any, mode: Any, expected: float
) -> None:
    rollout = await run_one(store, SyncModeAgent(), mode=mode)
    assert await reward_of(store, rollout.rollout_id) == expected


async def test_async_family_is_chosen_when_an_async_method_is_overridden(store: Any) -> None:
    agent = ModeAgent()
    assert agent.is_async()
    rollout = await run_one(store, agent, mode="val")
    assert await reward_of(store, rollout.rollout_id) == 0.0
    with pytest.raises(NotImplementedError):  # async family: training_rollout_async -> rollout_async
        await agent.training_rollout_async("t", {}, None)  # type: ignore[arg-type]


async def test_hooks_run_in_order_and_a_failing_hook_is_ignored(store: Any) -> None:
    calls: List[str] = []

    class Recorder(Hook):
        async def on_rollout_start(self, *, agent: Any, runner: Any, rollout: Any) -> None:
            calls.append("on_rollout_start")

        async def on_trace_start(self, *, agent: Any, runner: Any, tracer: Any, rollout: Any) -> None:
            calls.append("on_trace_start")

        def on_trace_end(self, *, agent: Any, runner: Any, tracer: Any, rollout: Any) -> None:  # sync works too
            calls.append("on_trace_end")
            raise RuntimeError("hook bug")

        async def on_rollout_end(self, *, agent: Any, runner: Any, rollout: Any, spans: Any) -> None:
            calls.append(f"on_rollout_end:{len(spans)}")

    runner = make_runner(max_rollouts=1)
    await store.enqueue_rollout("t", mode="train")
    with runner.run_context(agent=agl.rollout(lambda task, llm: 0.5), store=store, hooks=[Recorder()]):
        await runner.iter()
    assert calls == ["on_rollout_start", "on_trace_start", "on_trace_end", "on_rollout_end:1"]


async def test_unknown_resources_id_fails_the_attempt_instead_of_leaving_it_preparing(store: Any) -> None:
    runner = make_runner(max_rollouts=1)
    rollout = await store.enqueue_rollout("t", resources_id="rs-missing")
    with runner.run_context(agent=agl.rollout(lambda task, llm: 1.0), store=store):
        await runner.iter()
    assert (await store.get_rollout_by_id(rollout.rollout_id)).status == "failed"


async def test_no_resources_at_all_runs_the_agent_with_an_empty_dict() -> None:
    from agentlightning_memory import InMemoryLightningStore

    seen: List[Any] = []

    class Agent(LitAgent[str]):
        def rollout(self, task: str, resources: Any, rollout: Any) -> float:
            seen.append(resources)
            return 1.0

    async with InMemoryLightningStore(watchdog_interval=None) as empty:
        rollout = await run_one(empty, Agent())
    assert seen == [{}] and rollout.status == "succeeded"


async def test_resources_by_id_win_over_latest(store: Any) -> None:
    seen: List[str] = []
    first = await store.add_resources({"p": PromptTemplate(template="first")})
    await store.add_resources({"p": PromptTemplate(template="second")})
    agent = agl.prompt_rollout(lambda task, prompt_template: seen.append(prompt_template.template))
    runner = make_runner(max_rollouts=2)
    await store.enqueue_rollout("a", resources_id=first.resources_id)
    await store.enqueue_rollout("b")
    with runner.run_context(agent=agent, store=store):
        await runner.iter()
    assert seen == ["first", "second"]


async def test_iter_stops_at_max_rollouts_and_uses_its_worker_id(store: Any) -> None:
    for i in range(3):
        await store.enqueue_rollout(i)
    runner = make_runner(max_rollouts=2)
    with runner.run_context(agent=agl.rollout(lambda task, llm: 1.0), store=store, worker_id=3):
        await runner.iter()
    finished = await store.query_rollouts(status_in=["succeeded"])
    assert len(finished) == 2
    assert {r.attempt.worker_id for r in finished} == {"Worker-3"}  # type: ignore[union-attr]
    assert len(await store.query_rollouts(status_in=["queuing"])) == 1


async def test_iter_returns_promptly_once_the_event_is_set(store: Any) -> None:
    event = ThreadingEvent()
    runner = make_runner(poll_interval=3600.0)  # an idle runner that only polled the queue would sleep for an hour
    with runner.run_context(agent=agl.rollout(lambda task, llm: 1.0), store=store), anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_iter_with_event, runner, event)
            await anyio.sleep(0.2)  # most likely inside its poll wait by now; returning at once is right too
            event.set()


async def _iter_with_event(runner: LitAgentRunner, event: Any) -> None:
    await runner.iter(event=event)


async def test_async_agents_run_concurrently_up_to_max_concurrency(store: Any) -> None:
    active = 0
    peak = 0

    async def body(task: int, llm: LLM) -> float:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.2)
        active -= 1
        return 1.0

    for i in range(6):
        await store.enqueue_rollout(i)
    runner = make_runner(max_rollouts=6, max_concurrency=3)
    with runner.run_context(agent=agl.rollout(body), store=store):
        await runner.iter()
    assert peak == 3
    assert len(await store.query_rollouts(status_in=["succeeded"])) == 6


@pytest.mark.parametrize("launch_mode", ["asyncio", "thread"])  # upstream's heartbeat_launch_mode: same beats
async def test_heartbeats_report_system_stats_and_touch_running_attempts(store: Any, launch_mode: str) -> None:
    async def slow(task: str, llm: LLM) -> float:
        await anyio.sleep(0.6)
        return 1.0

    rollout = await store.enqueue_rollout("t")
    runner = make_runner(max_rollouts=1, heartbeat_interval=0.1, heartbeat_launch_mode=launch_mode)
    with runner.run_context(agent=agl.rollout(slow), store=store):
        await runner.iter()
    worker = await store.get_worker_by_id("Worker-0")
    assert worker is not None and worker.heartbeat_stats and "cpu_threads" in worker.heartbeat_stats
    attempt = await store.get_latest_attempt(rollout.rollout_id)
    assert attempt is not None and attempt.last_heartbeat_time is not None


def test_heartbeat_launch_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="heartbeat_launch_mode must be 'asyncio' or 'thread', got 'process'"):
        LitAgentRunner(heartbeat_launch_mode="process")


async def test_step_returns_the_finished_rollout(store: Any) -> None:
    runner = make_runner()
    with runner.run_context(agent=agl.rollout(lambda task, llm: 0.5), store=store):
        rollout = await runner.step("task-1", mode="train", resources=RESOURCES)
    assert rollout.status == "succeeded" and rollout.input == "task-1" and rollout.mode == "train"


async def test_cancelled_rollout_is_not_marked_succeeded(store: Any) -> None:
    async def forever(task: str, llm: LLM) -> float:
        await anyio.sleep(30)
        return 1.0

    rollout = await store.enqueue_rollout("t")
    runner = make_runner(max_rollouts=1)
    with runner.run_context(agent=agl.rollout(forever), store=store):
        with anyio.move_on_after(0.3):
            await runner.iter()
    assert (await store.get_rollout_by_id(rollout.rollout_id)).status in ("preparing", "running")


def test_runner_configuration_errors() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        LitAgentRunner(max_concurrency=0)
    with pytest.raises(ValueError, match="max_rollouts"):
        LitAgentRunner(max_rollouts=-1)
    with pytest.raises(ValueError, match="Agent not initialized"):
        LitAgentRunner().get_agent()
    with pytest.raises(RuntimeError, match="undefined"):
        LitAgentRunner().run()
    assert LitAgentRunner().get_worker_id() == "Worker-Unknown"


def test_runner_pickles_without_its_runtime_state() -> None:
    import pickle

    runner = LitAgentRunner(tracer=OtelTracer(), max_rollouts=3, max_concurrency=2)
    clone = pickle.loads(pickle.dumps(runner))
    assert isinstance(clone.tracer, OtelTracer) and clone.tracer is not runner.tracer
    assert (clone.max_rollouts, clone.max_concurrency) == (3, 2)
