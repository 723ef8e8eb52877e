"""``InProcessExecutionStrategy`` ("inprocess", alias "shm"): the algorithm and the runners in this process."""

from __future__ import annotations

import logging
import threading
import warnings
from typing import TYPE_CHECKING, Any, List, Optional

import anyio

from ._bundles import resolve_backend, run_until_stopped, unwrap_group
from .base import AlgorithmBundle, ExecutionStrategy, RunnerBundle, check_n_runners
from .events import ThreadingEvent
from .interrupts import run_interruptibly

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

__all__ = ["InProcessExecutionStrategy"]

logger = logging.getLogger(__name__)


class InProcessExecutionStrategy(ExecutionStrategy):
    """Runs the algorithm and ``n_runners`` runners in this process, on any store.

    Args:
        n_runners: runner workers (ids 0..n-1).
        mode: ``"tasks"`` (default): everything in one event loop; ``"threads"``: each runner in its own thread
            with its own event loop (the store must be thread-safe), the algorithm on the calling thread.
        backend: ``"asyncio"`` or ``"trio"``.
        graceful_timeout: seconds runners get to finish their rollouts after the algorithm returned, before they
            are cancelled (a cancelled attempt keeps its status, see docs/runtime.md); in ``"tasks"`` mode, also the
            seconds the algorithm gets to return once a runner failed (the stop event is set), before it is
            cancelled and the runner's exception raised.
        join_timeout: (``mode="threads"``) seconds to wait for each runner thread once it was cancelled.

    Upstream's ``graceful_delay`` is accepted for ``graceful_timeout`` (deprecated); ``main_thread`` and
    ``managed_store`` are accepted and kept as attributes (:class:`SharedMemoryExecutionStrategy` acts on
    ``main_thread``).
    """

    alias = "inprocess"

    def __init__(
        self,
        n_runners: int = 1,
        *,
        mode: str = "tasks",
        backend: Optional[str] = None,
        graceful_timeout: float = 5.0,
        join_timeout: float = 5.0,
        **legacy: Any,
    ) -> None:
        if "graceful_delay" in legacy:
            warnings.warn("`graceful_delay` is deprecated; use `graceful_timeout`.", DeprecationWarning, stacklevel=2)
            graceful_timeout = legacy.pop("graceful_delay")
        self.main_thread: Optional[str] = legacy.pop("main_thread", None)  # upstream "shm" knobs
        self.managed_store: Optional[bool] = legacy.pop("managed_store", None)
        if legacy:
            raise TypeError(f"InProcessExecutionStrategy got unexpected arguments: {', '.join(sorted(legacy))}")
        if mode not in ("tasks", "threads"):
            raise ValueError(f"mode must be 'tasks' or 'threads', got {mode!r}")
        self.n_runners = check_n_runners(n_runners)
        self.mode = mode
        self.backend = resolve_backend(backend)
        self.graceful_timeout = graceful_timeout
        self.join_timeout = join_timeout

    def execute(self, algorithm: AlgorithmBundle, runner: RunnerBundle, store: LightningStore) -> None:
        event = ThreadingEvent()
        if self.mode == "tasks":
            self._execute_tasks(algorithm, runner, store, event)
        else:
            self._execute_threads(algorithm, runner, store, event)

    def _runner_main(self, runner: RunnerBundle, store: LightningStore, worker_id: int, event: ThreadingEvent) -> Any:
        return run_until_stopped(
            runner, store, worker_id, event,
            event=event, graceful_timeout=self.graceful_timeout, what=f"runner {worker_id}",
        )  # fmt: skip

    def _execute_tasks(
        self, algorithm: AlgorithmBundle, runner: RunnerBundle, store: LightningStore, event: ThreadingEvent
    ) -> None:
        failures: List[Exception] = []
        running = [self.n_runners]

        async def main() -> None:
            async with anyio.create_task_group() as tg:

                async def runner_task(worker_id: int) -> None:
                    try:
                        await self._runner_main(runner, store, worker_id, event)
                    except Exception as exc:  # noqa: BLE001 - the algorithm is asked to stop, then cancelled
                        failures.append(exc)
                    except BaseException:
                        event.set()
                        raise
                    finally:
                        running[0] -= 1
                    if failures and not event.is_set():
                        event.set()
                        await anyio.sleep(self.graceful_timeout)
                        logger.warning("The algorithm did not stop within %.1f s of a runner failure; cancelling it",
                                       self.graceful_timeout)  # fmt: skip
                        tg.cancel_scope.cancel()

                for worker_id in range(self.n_runners):
                    tg.start_soon(runner_task, worker_id)
                try:
                    await algorithm(store, event)
                except BaseException:
                    event.set()
                    raise
                if failures:
                    tg.cancel_scope.cancel()  # nothing left to wait for
                elif running[0] > 0:
                    event.set()  # the algorithm is done: stop the runners (none left: the event stays as it is)

        try:
            run_interruptibly(main, backend=self.backend)
        except BaseException as exc:
            event.set()
            for failure in failures:
                logger.error("A runner failed during the same run: %r", failure)
            inner = unwrap_group(exc)
            if inner is exc:
                raise
            raise inner from None
        if failures:
            for other in failures[1:]:
                logger.error("Another runner failed during the same run: %r", other)
            raise failures[0]

    def _execute_threads(
        self, algorithm: AlgorithmBundle, runner: RunnerBundle, store: LightningStore, event: ThreadingEvent
    ) -> None:
        if not store.capabilities.get("thread_safe"):
            raise ValueError(f"mode='threads' needs a thread-safe store; {type(store).__name__} is not")
        errors: List[BaseException] = []

        def thread_main(worker_id: int) -> None:
            try:
                anyio.run(self._runner_main, runner, store, worker_id, event, backend=self.backend)
            except BaseException as exc:
                logger.exception("Runner thread %d failed", worker_id)
                errors.append(exc)
                event.set()

        threads = [
            threading.Thread(target=thread_main, args=(i,), name=f"agl-runner-{i}", daemon=True)
            for i in range(self.n_runners)
        ]
        for thread in threads:
            thread.start()
        try:
            run_interruptibly(algorithm, store, event, backend=self.backend)
        finally:
            event.set()
            for thread in threads:
                thread.join(self.graceful_timeout + self.join_timeout)
                if thread.is_alive():
                    logger.error("Runner thread %s did not stop; abandoning it (daemon)", thread.name)
        if errors:
            raise unwrap_group(errors[0])
