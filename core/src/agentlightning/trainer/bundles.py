"""The two halves of a run that an execution strategy lays out: the algorithm and the runners."""

from __future__ import annotations

import copy
import logging
import pickle
import threading
import time
from typing import TYPE_CHECKING, Any, Optional, Sequence

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from agentlightning.execution.events import ExecutionEvent
    from agentlightning.litagent.litagent import LitAgent
    from agentlightning.runner.base import Runner
    from agentlightning.runner.hooks import Hook
    from agentlightning.store.base import LightningStore

    from .trainer import Trainer

__all__ = ["AlgorithmRun", "RunnerRun"]

logger = logging.getLogger(__name__)


class AlgorithmRun:
    """Wires the algorithm to the store the strategy hands over, runs it, and shows progress meanwhile."""

    def __init__(self, trainer: Trainer, algorithm: Any, train_dataset: Any, val_dataset: Any) -> None:
        self.trainer = trainer
        self.algorithm = algorithm
        self.train_dataset = train_dataset
        self.val_dataset = val_dataset
        self.started = time.time()
        """When the run began: attempts still in flight that started earlier were left by a run that died."""

    async def __call__(self, store: LightningStore, event: ExecutionEvent) -> None:
        algorithm, trainer = self.algorithm, self.trainer
        if algorithm is None:  # runners serve a queue that something else feeds, until stopped
            while not event.is_set():  # noqa: ASYNC110 - a thread or process event: polled, not awaited
                await anyio.sleep(0.1)
            return
        from .recovery import recover_interrupted

        await recover_interrupted(store, before=self.started)
        algorithm.set_trainer(trainer)
        algorithm.set_store(store)
        algorithm.set_adapter(trainer.adapter)
        if trainer.initial_resources is not None:
            algorithm.set_initial_resources(trainer.initial_resources)
        if trainer.llm_proxy is not None:
            if hasattr(trainer.llm_proxy, "set_store"):
                trainer.llm_proxy.set_store(store)
            algorithm.set_llm_proxy(trainer.llm_proxy)
        async with anyio.create_task_group() as tg:
            if trainer.progress:
                from .progress import ProgressReporter

                reporter = trainer.progress if isinstance(trainer.progress, ProgressReporter) else ProgressReporter()
                reporter.bind(store)
                tg.start_soon(reporter.run)
            try:
                if algorithm.is_async():
                    await algorithm.run(train_dataset=self.train_dataset, val_dataset=self.val_dataset)
                else:  # in a thread, so that in-process runners keep running
                    await anyio.to_thread.run_sync(
                        lambda: algorithm.run(train_dataset=self.train_dataset, val_dataset=self.val_dataset)
                    )
            except Exception:
                logger.exception("Algorithm bundle encountered an error.")
                raise
            finally:
                tg.cancel_scope.cancel()


def clone_runner(runner: Runner[Any]) -> Runner[Any]:
    """A separate runner with the same configuration (for a second worker in one process)."""
    try:
        return pickle.loads(pickle.dumps(runner))  # noqa: S301 - our own object, pickled just above
    except Exception:  # noqa: BLE001 - pickling may fail in any way; then a shallow copy
        return copy.copy(runner)


class RunnerRun:
    """Runs one runner worker; picklable, so that runner processes receive it."""

    def __init__(self, agent: LitAgent[Any], runner: Runner[Any], hooks: Sequence[Hook]) -> None:
        self.agent = agent
        self.runner = runner
        self.hooks = list(hooks)
        self._used = False
        self._lock = threading.Lock()

    def _runner_for_worker(self) -> Runner[Any]:
        with self._lock:
            if not self._used:
                self._used = True
                return self.runner
        return clone_runner(self.runner)

    async def __call__(self, store: LightningStore, worker_id: int, event: Optional[ExecutionEvent]) -> None:
        runner = self._runner_for_worker()
        runner.init(agent=self.agent, hooks=self.hooks)
        try:
            runner.init_worker(worker_id, store)
            try:
                await runner.iter(event=event)
            finally:
                _quietly(runner.teardown_worker, worker_id)
        finally:
            _quietly(runner.teardown)

    def __getstate__(self) -> dict[str, Any]:
        return {"agent": self.agent, "runner": self.runner, "hooks": self.hooks}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _used=False, _lock=threading.Lock())


def _quietly(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("Runner teardown step %s failed", getattr(fn, "__name__", fn))
