"""Algorithm base, @algo, helpers and Baseline (in-process, against a real in-memory store)."""

from __future__ import annotations

import random
from typing import Any, AsyncIterator, List

import agentlightning as agl
import anyio
import pytest
from agentlightning.algorithm import Algorithm, Baseline, FunctionalAlgorithm, algo, batch_iter_over_dataset
from agentlightning.algorithm.fast import DATA_INDEX_KEY, summarize
from agentlightning.algorithm.utils import with_llm_proxy, with_store
from agentlightning.execution.events import ThreadingEvent
from agentlightning.runner import LitAgentRunner
from agentlightning.tracer.dummy import DummyTracer


@pytest.fixture
async def store() -> AsyncIterator[Any]:
    from agentlightning_memory import InMemoryLightningStore

    async with InMemoryLightningStore(watchdog_interval=None) as s:
        yield s


# -- base and @algo ----------------------------------------------------------------------------------------------


def test_algorithm_accessors_and_errors() -> None:
    algorithm = Algorithm()
    with pytest.raises(ValueError, match="Store has not been set"):
        algorithm.get_store()
    with pytest.raises(ValueError, match="Adapter has not been set"):
        algorithm.get_adapter()
    assert algorithm.get_llm_proxy() is None and algorithm.get_initial_resources() is None
    with pytest.raises(NotImplementedError):
        algorithm.run()

    class Proxy:
        pass

    proxy = Proxy()
    algorithm.set_llm_proxy(proxy)
    assert algorithm.get_llm_proxy() is proxy
    del proxy
    with pytest.raises(ValueError, match="garbage collected"):
        algorithm.get_llm_proxy()


def test_algo_keeps_the_function_and_injects_by_name() -> None:
    seen: dict[str, Any] = {}

    @algo
    def train(store: Any, initial_resources: Any, train_dataset: Any) -> None:
        """Doc."""
        seen.update(store=store, initial_resources=initial_resources, train_dataset=train_dataset)

    assert isinstance(train, FunctionalAlgorithm) and train.__doc__ == "Doc." and not train.is_async()
    train.set_store("S")  # type: ignore[arg-type]
    train.set_initial_resources({"r": 1})  # type: ignore[dict-item]
    assert train.run(train_dataset=[1]) is None
    assert seen == {"store": "S", "initial_resources": {"r": 1}, "train_dataset": [1]}
    with pytest.raises(TypeError, match="val_dataset is provided but not supported"):
        train.run(train_dataset=[1], val_dataset=[2])
    train(store=1, initial_resources=2, train_dataset=3)  # still the plain function
    assert seen["store"] == 1


def test_async_algo_returns_a_coroutine() -> None:
    @algo
    async def train(val_dataset: Any) -> str:
        return f"val={val_dataset}"

    assert train.is_async()
    assert anyio.run(lambda: train.run(val_dataset=[1])) == "val=[1]"


def test_algo_needing_a_missing_store_says_so() -> None:
    with pytest.raises(ValueError, match="Store has not been set"):
        algo(lambda store: None).run()


# -- helpers -----------------------------------------------------------------------------------------------------


def test_batch_iter_yields_the_whole_dataset_when_the_batch_is_larger() -> None:
    batches = batch_iter_over_dataset([1, 2, 3], 5)
    for _ in range(3):
        assert sorted(next(batches)) == [1, 2, 3]


def test_batch_iter_cycles_with_distinct_items_per_batch() -> None:
    random.seed(3)
    data = list(range(7))
    batches = batch_iter_over_dataset(data, 3)
    seen: List[int] = []
    for _ in range(14):
        batch = next(batches)
        assert len(batch) == 3 and len(set(batch)) == 3
        seen.extend(batch)
    assert set(seen) == set(data)
    with pytest.raises(ValueError, match="non-empty"):
        next(batch_iter_over_dataset([], 2))


class Proxy:
    def __init__(self, running: bool = False) -> None:
        self.running = running
        self.calls: List[str] = []

    def is_running(self) -> bool:
        return self.running

    async def start(self) -> None:
        self.calls.append("start")
        self.running = True

    async def stop(self) -> None:
        self.calls.append("stop")
        self.running = False


class Injected(Algorithm):
    @with_llm_proxy()
    @with_store
    async def run(self, store: Any, llm_proxy: Any, train_dataset: Any = None, val_dataset: Any = None) -> Any:  # type: ignore[override]
        return store, llm_proxy, train_dataset

    @with_llm_proxy(required=True)
    async def needs_proxy(self, llm_proxy: Any) -> Any:
        return llm_proxy


def test_with_store_and_with_llm_proxy_inject_and_manage_the_proxy() -> None:
    algorithm = Injected()
    algorithm.set_store("S")  # type: ignore[arg-type]
    assert anyio.run(lambda: algorithm.run(train_dataset=[1])) == ("S", None, [1])
    with pytest.raises(ValueError, match="LLM proxy is required"):
        anyio.run(algorithm.needs_proxy)
    stopped = Proxy()
    algorithm.set_llm_proxy(stopped)
    anyio.run(algorithm.run)
    assert stopped.calls == ["start", "stop"]
    running = Proxy(running=True)
    algorithm.set_llm_proxy(running)
    anyio.run(algorithm.run)
    assert running.calls == []


# -- Baseline ----------------------------------------------------------------------------------------------------


def test_baseline_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="train_split must be between 0 and 1"):
        Baseline(train_split=1.0)
    with pytest.raises(ValueError, match="span_verbosity"):
        Baseline(span_verbosity="all")  # type: ignore[arg-type]
    assert isinstance(Baseline(), agl.FastAlgorithm)


async def _run_baseline(store: Any, baseline: Baseline, train: Any, val: Any = None, runners: int = 1) -> None:
    event = ThreadingEvent()
    baseline.set_store(store)

    async def runner(worker_id: int) -> None:
        r = LitAgentRunner(tracer=DummyTracer(), poll_interval=0.02, interval_jitter=0.0, heartbeat_interval=0)
        with r.run_context(agent=agl.rollout(lambda task, llm: float(task)), store=store, worker_id=worker_id):
            await r.iter(event=event)

    async with anyio.create_task_group() as tg:
        for i in range(runners):
            tg.start_soon(runner, i)
        await baseline.run(train_dataset=train, val_dataset=val)
        event.set()


@pytest.mark.anyio
async def test_baseline_runs_every_sample_in_order_and_summarizes(store: Any, caplog: Any) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="agentlightning.algorithm.fast")
    baseline = Baseline(polling_interval=0.05, max_queue_length=2, span_verbosity="key_values")
    baseline.set_initial_resources({"llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="m")})
    await _run_baseline(store, baseline, [0, 1, 2, 3, 4], [0.5, 0.5], runners=2)
    assert baseline.summary("train")["count"] == 5
    assert baseline.summary("train")["mean"] == 2.0
    assert baseline.summary("val") == summarize([o for o in baseline.outcomes if o.split == "val"])
    assert baseline.summary()["success_rate"] == 1.0
    rollouts = await store.query_rollouts(sort_by="start_time")
    assert [r.metadata[DATA_INDEX_KEY] for r in rollouts] == [0, 1, 2, 3, 4, 0, 1]
    assert [r.mode for r in rollouts] == ["train"] * 5 + ["val"] * 2
    assert {r.resources_id for r in rollouts} == {"default"}
    assert "Finished with status succeeded" in caplog.text and "Attributes: {" in caplog.text


@pytest.mark.anyio
async def test_baseline_resumes_a_store_that_already_holds_some_rollouts(store: Any) -> None:
    await store.add_resources({"llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="m")})
    meta = lambda i: {"agl_data_split": "train", DATA_INDEX_KEY: i, "agl_epoch": 0}  # noqa: E731
    done = await store.enqueue_rollout(0, mode="train", metadata=meta(0))
    claimed = await store.dequeue_rollout(worker_id="old")
    await store.update_attempt(done.rollout_id, claimed.attempt.attempt_id, status="succeeded")
    interrupted = await store.enqueue_rollout(1, mode="train", metadata=meta(1))
    await store.dequeue_rollout(worker_id="old")  # left "preparing" by a run that died
    await anyio.sleep(0.01)
    baseline = Baseline(polling_interval=0.05)
    await _run_baseline(store, baseline, [0, 1, 2])
    rollouts = await store.query_rollouts()
    assert len(rollouts) == 3  # the finished one kept, the interrupted one retried, one new
    assert {r.status for r in rollouts} == {"succeeded"}
    attempts = await store.query_attempts(interrupted.rollout_id)
    assert [a.status for a in attempts] == ["unresponsive", "succeeded"]  # the dead run's attempt is marked
    assert sorted(o.index for o in baseline.outcomes) == [0, 1, 2]


@pytest.mark.anyio
async def test_baseline_with_no_data_logs_and_returns(store: Any, caplog: Any) -> None:
    baseline = Baseline()
    baseline.set_store(store)
    await baseline.run(train_dataset=[], val_dataset=None)
    assert "requires at least one non-empty dataset" in caplog.text
