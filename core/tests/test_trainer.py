"""Trainer: building components from specs, dev/fit dispatch, and an in-process run on a real store."""

from __future__ import annotations

import io
import re
import warnings
from typing import Any, List

import agentlightning as agl
import anyio
import pytest
from agentlightning.algorithm import Algorithm, Baseline
from agentlightning.execution import InProcessExecutionStrategy, MultiProcessExecutionStrategy
from agentlightning.runner import Hook, LitAgentRunner
from agentlightning.tracer.dummy import DummyTracer
from agentlightning.tracer.otel import OtelTracer
from agentlightning.trainer import Trainer, build_component, instantiate_component, instantiate_from_spec, load_class


class Sample:
    def __init__(self, value: int = 0, name: str = "x") -> None:
        self.value, self.name = value, name


class SampleChild(Sample):
    pass


class Other:
    pass


def _make_other() -> Other:
    return Other()


class KwOnly:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


# -- build rules -------------------------------------------------------------------------------------------------


def test_load_class_accepts_dotted_and_colon_paths() -> None:
    assert load_class("agentlightning.algorithm.Baseline") is Baseline
    assert load_class("agentlightning.algorithm:Baseline") is Baseline
    with pytest.raises(ValueError, match="not an import path"):
        load_class("Baseline")


def test_instantiate_component_adds_only_named_optional_defaults() -> None:
    calls: List[int] = []

    def factory() -> int:
        calls.append(1)
        return 7

    built = instantiate_component(Sample, {"name": "n"}, {"value": factory, "unknown": 1})
    assert (built.value, built.name, calls) == (7, "n", [1])
    assert instantiate_component(KwOnly, None, {"value": factory}).kwargs == {}
    assert calls == [1]  # never called for **kwargs constructors


def test_instantiate_from_spec_rules() -> None:
    assert instantiate_from_spec(f"{__name__}.Sample", spec_name="c").value == 0
    built = instantiate_from_spec({"type": f"{__name__}.Sample", "value": 3}, spec_name="c")
    assert built.value == 3
    built = instantiate_from_spec({"value": 4}, spec_name="c", dict_requires_type=False, dict_default_cls=Sample)
    assert built.value == 4
    with pytest.raises(ValueError, match="c dict must have a 'type' key"):
        instantiate_from_spec({"value": 1}, spec_name="c")
    with pytest.raises(ValueError, match="missing 'type' and no default class"):
        instantiate_from_spec({"value": 1}, spec_name="c", dict_requires_type=False)
    with pytest.raises(TypeError, match="must be a string or dict"):
        instantiate_from_spec(3, spec_name="c")
    registry = {"s": Sample}.get
    assert instantiate_from_spec({"name": "s", "value": 2}, spec_name="c", registry=registry).value == 2


def test_build_component_rules_and_errors() -> None:
    instance = Sample()
    assert build_component(instance, expected_type=Sample, spec_name="component") is instance
    assert build_component(None, expected_type=Sample, spec_name="component", default_factory=Sample).value == 0
    assert build_component(None, expected_type=Sample, spec_name="component", allow_none=True) is None
    with pytest.raises(ValueError, match="component cannot be None."):
        build_component(None, expected_type=Sample, spec_name="component")
    built = build_component(SampleChild, expected_type=Sample, spec_name="component", optional_defaults={"value": 5})
    assert isinstance(built, SampleChild) and built.value == 5
    assert build_component(lambda: Sample(9), expected_type=Sample, spec_name="component").value == 9
    with pytest.raises(TypeError, match="component factory returned .*Other.*, which is not a Sample subclass."):
        build_component(_make_other, expected_type=Sample, spec_name="component")
    with pytest.raises(
        ValueError, match=r"Invalid component type: <class 'int'>. Expected Sample, str, dict, or None."
    ):
        build_component(3, expected_type=Sample, spec_name="component")
    with pytest.raises(ValueError, match="Invalid component type"):
        build_component(Other, expected_type=Sample, spec_name="component")


# -- Trainer construction ----------------------------------------------------------------------------------------


def test_trainer_defaults() -> None:
    trainer = Trainer(progress=False)
    assert isinstance(trainer.tracer, OtelTracer)
    assert isinstance(trainer.runner, LitAgentRunner) and trainer.runner.tracer is trainer.tracer
    assert isinstance(trainer.strategy, InProcessExecutionStrategy) and trainer.n_runners == 1
    assert type(trainer.store).__name__ == "InMemoryLightningStore"
    assert trainer.algorithm is None and trainer.hooks == ()
    assert isinstance(Trainer(n_runners=3).strategy, MultiProcessExecutionStrategy)


def test_trainer_components_by_name_dict_class_and_url(tmp_path: Any) -> None:
    trainer = Trainer(
        algorithm="baseline",
        tracer="dummy",
        strategy={"type": "shm", "mode": "threads"},
        store=f"sqlite:///{tmp_path}/run.db",
        runner={"type": "agentlightning.runner.LitAgentRunner", "max_concurrency": 2},
        n_runners=3,
        max_rollouts=5,
        hooks=Hook(),
    )
    assert isinstance(trainer.algorithm, Baseline) and isinstance(trainer.tracer, DummyTracer)
    assert isinstance(trainer.strategy, InProcessExecutionStrategy) and trainer.strategy.mode == "threads"
    assert trainer.strategy.n_runners == 3
    assert type(trainer.store).__name__ == "SqliteLightningStore"
    assert trainer.runner.max_concurrency == 2 and trainer.runner.max_rollouts == 5  # type: ignore[attr-defined]
    assert trainer.runner.tracer is trainer.tracer  # type: ignore[attr-defined]
    assert len(trainer.hooks) == 1
    cs = Trainer(strategy="cs", store=f"sqlite:///{tmp_path}/run2.db", port=9100)
    assert isinstance(cs.strategy, MultiProcessExecutionStrategy)
    assert cs.strategy.store_url == f"sqlite:///{tmp_path}/run2.db" and cs.strategy.server_port == 9100


def test_strategy_instance_keeps_its_n_runners() -> None:
    trainer = Trainer(strategy=InProcessExecutionStrategy(n_runners=4), n_runners=8)
    assert trainer.n_runners == 4


def test_trainer_rejects_bad_specs_with_clear_errors() -> None:
    with pytest.raises(ValueError, match="Invalid algorithm type"):
        Trainer(algorithm=42)
    with pytest.raises(ValueError, match="neither a registered name nor an import path"):
        Trainer(strategy="nope")
    with pytest.raises(ValueError, match="n_runners must be an integer"):
        Trainer(strategy=InProcessExecutionStrategy(n_runners=0))


def test_deprecated_aliases_warn() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = Trainer(n_workers=2, max_tasks=3, strategy="inprocess")
    assert trainer.n_runners == 2 and trainer.max_rollouts == 3
    assert {str(w.message).split(";")[0] for w in caught} >= {"`n_workers` is deprecated", "`max_tasks` is deprecated"}


def test_upstream_trainer_arguments_dev_daemon_and_triplet_exporter() -> None:
    from agentlightning.adapter import TracerTraceToTriplet

    exporter = TracerTraceToTriplet()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = Trainer(triplet_exporter=exporter, dev=True, daemon=False, strategy="inprocess", progress=False)
    assert trainer.adapter is exporter and trainer.triplet_exporter is exporter
    assert trainer.dev_mode is True and trainer.daemon is False
    messages = {str(w.message) for w in caught if w.category is DeprecationWarning}
    assert any("Trainer(dev=True) is deprecated" in m for m in messages)
    assert any("`triplet_exporter` is deprecated; use `adapter`" in m for m in messages)

    other = TracerTraceToTriplet()
    with pytest.warns(DeprecationWarning, match="ignored because `adapter` is given"):
        trainer = Trainer(adapter=other, triplet_exporter=exporter, strategy="inprocess", progress=False)
    assert trainer.adapter is other and trainer.daemon is True and trainer.dev_mode is False


def test_dev_requires_a_fast_algorithm() -> None:
    class Slow(Algorithm):
        async def run(self, train_dataset: Any = None, val_dataset: Any = None) -> None:
            return None

    agent = agl.rollout(lambda task, llm: 1.0)
    with pytest.raises(TypeError, match="requires an algorithm that inherits from FastAlgorithm. Received Slow."):
        Trainer(algorithm=Slow()).dev(agent, [1])
    with pytest.raises(TypeError, match="agent must be a LitAgent"):
        Trainer().fit(lambda task: None, [1])  # type: ignore[arg-type]


# -- running -----------------------------------------------------------------------------------------------------


@agl.rollout
async def double(task: int, llm: agl.LLM) -> float:
    agl.emit_message(f"task {task}")
    return task * 2.0


def test_dev_runs_baseline_in_process_and_stores_spans_and_rewards() -> None:
    trainer = Trainer(
        n_runners=2,
        strategy="inprocess",
        runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.05},
        initial_resources={"llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="m")},
        algorithm=Baseline(polling_interval=0.05),
    )
    trainer.dev(double, [1, 2, 3])
    summary = trainer.algorithm.summary()  # type: ignore[union-attr]
    assert summary["count"] == 3 and summary["mean"] == 4.0 and summary["success_rate"] == 1.0

    import anyio

    async def spans() -> int:
        total = 0
        for rollout in await trainer.store.query_rollouts():
            total += len(await trainer.store.query_spans(rollout.rollout_id))
        return total

    assert anyio.run(spans) == 6  # one message span and one reward span per rollout


def test_algorithm_failure_propagates_and_stops_the_runners() -> None:
    @agl.algo
    async def broken(store: Any) -> None:
        raise RuntimeError("algorithm bug")

    trainer = Trainer(algorithm=broken, strategy="inprocess", progress=False)
    with pytest.raises(RuntimeError, match="algorithm bug"):
        trainer.fit(double)


def test_sync_algorithm_runs_in_a_thread_while_runners_work() -> None:
    import time

    finished: List[str] = []

    @agl.algo
    def poll(store: Any) -> None:
        import anyio.from_thread

        anyio.from_thread.run(store.add_resources, {"llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="m")})
        rollout = anyio.from_thread.run(store.enqueue_rollout, 4)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            current = anyio.from_thread.run(store.get_rollout_by_id, rollout.rollout_id)
            if current.status == "succeeded":
                finished.append(current.rollout_id)
                return
            time.sleep(0.05)

    trainer = Trainer(
        algorithm=poll, strategy="inprocess", progress=False,
        runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.05},
    )  # fmt: skip
    trainer.fit(double)
    assert len(finished) == 1


# -- progress ----------------------------------------------------------------------------------------------------


class FakeTerminal:
    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


@pytest.mark.anyio
async def test_progress_counts_statuses_and_mean_reward_on_a_terminal() -> None:
    import anyio
    from agentlightning.trainer import ProgressReporter
    from agentlightning_memory import InMemoryLightningStore

    async with InMemoryLightningStore(watchdog_interval=None) as store:
        for value in (0.5, 1.0):
            rollout = await store.start_rollout(input=value)
            reward = agl.Span.from_core_fields(
                agl.emit_reward(value, propagate=False),
                rollout_id=rollout.rollout_id,
                attempt_id=rollout.attempt.attempt_id,
                sequence_id=1,
            )
            await store.add_span(reward)
            await store.update_attempt(rollout.rollout_id, rollout.attempt.attempt_id, status="succeeded")
        failed = await store.start_rollout(input=0)
        await store.update_attempt(failed.rollout_id, failed.attempt.attempt_id, status="failed")
        await store.enqueue_rollout(input=1)
        terminal = FakeTerminal()
        reporter = ProgressReporter(store, stream=terminal, tty_interval=0.05, rich=False)  # type: ignore[arg-type]
        snapshot = await reporter.snapshot()
        assert (snapshot.queued, snapshot.running, snapshot.succeeded, snapshot.failed) == (1, 0, 2, 1)
        assert snapshot.mean_reward == 0.75
        with anyio.move_on_after(0.2):
            await reporter.run()
        assert terminal.text.startswith("\r") and terminal.text.endswith("\n")
        assert "2 succeeded | 1 failed | mean reward 0.750" in terminal.text


@pytest.mark.anyio
async def test_progress_logs_lines_when_not_on_a_terminal(caplog: Any) -> None:
    import io
    import logging

    from agentlightning.trainer import ProgressReporter
    from agentlightning_memory import InMemoryLightningStore

    caplog.set_level(logging.INFO, logger="agentlightning.trainer.progress")
    async with InMemoryLightningStore(watchdog_interval=None) as store:
        reporter = ProgressReporter(store, stream=io.StringIO())
        reporter.render(await reporter.snapshot())
    assert "Progress: rollouts: 0 queued | 0 running | 0 succeeded | 0 failed | mean reward n/a" in caplog.text


@pytest.mark.anyio
async def test_progress_shows_fields_an_algorithm_adds_after_the_counts() -> None:
    import io

    from agentlightning.trainer import ProgressReporter
    from agentlightning_memory import InMemoryLightningStore

    stream = io.StringIO()
    async with InMemoryLightningStore(watchdog_interval=None) as store:
        await store.enqueue_rollout(input=1)
        reporter = ProgressReporter(store, stream=stream, log=False, rewards=False)
        reporter.update(step="3/10", val_reward="0.775")
        reporter.render(await reporter.snapshot())
        reporter.update(step="4/10", val_reward=None, show=True)
    first, second = stream.getvalue().splitlines()
    assert first.startswith("rollouts: 1 queued | 0 running") and first.endswith("| step 3/10 | val reward 0.775")
    assert "mean reward" not in first  # rewards=False: the store's spans are not read
    assert second.endswith("| step 4/10")


def test_progress_line_styles_with_rich_on_a_terminal() -> None:
    pytest.importorskip("rich")
    from agentlightning.trainer import ProgressLine

    terminal = FakeTerminal()
    line = ProgressLine(terminal, rich=True)  # type: ignore[arg-type]
    line.render([("step", "1/5"), ("val", "0.5")])
    line.render([("step", "2/5"), ("val", "0.9")], final=True)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", terminal.text)
    assert plain == "\r\x1b[2Kstep 1/5 | val 0.5\r\x1b[2Kstep 2/5 | val 0.9\n"
    assert terminal.text != plain  # styled


def test_progress_line_without_a_store_says_what_is_missing() -> None:
    from agentlightning.trainer import ProgressReporter

    with pytest.raises(RuntimeError, match="bind"):
        anyio.run(ProgressReporter(stream=io.StringIO()).snapshot)
