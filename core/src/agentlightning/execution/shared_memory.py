"""Upstream v0.3's module path of the shared-memory strategy: ours is the in-process strategy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ..env_var import LightningEnvVar, resolve_bool_env_var
from .base import AlgorithmBundle, RunnerBundle
from .inprocess import InProcessExecutionStrategy
from .upstream_interrupts import StopOnInterruptAlgorithm, StopOnInterruptRunner, log_interrupt

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

__all__ = ["SharedMemoryExecutionStrategy"]


class SharedMemoryExecutionStrategy(InProcessExecutionStrategy):
    """:class:`~agentlightning.execution.InProcessExecutionStrategy` with upstream's argument order.

    ``main_thread`` is validated as upstream does (``"runner"`` needs ``n_runners == 1``; by default it is
    ``"runner"`` for one runner, ``"algorithm"`` for several); ``graceful_delay`` is our
    ``graceful_timeout``; ``join_timeout`` bounds the wait for runner threads. ``poll_interval`` and
    ``managed_store`` are accepted and have nothing to tune here: every store is used directly, and the stop event
    is polled at a fixed rate.

    As upstream's, ``execute()`` treats a ``KeyboardInterrupt`` (Ctrl-C, or raised by the bundle upstream runs on the
    main thread: the algorithm, or the runner with ``main_thread="runner"``) as a stop request: the other bundles
    stop cooperatively and ``execute()`` returns.
    """

    def __init__(
        self,
        n_runners: int = 1,
        main_thread: Optional[str] = None,
        join_timeout: float = 15.0,
        graceful_delay: float = 5.0,
        poll_interval: float = 0.05,
        managed_store: Optional[bool] = None,
        **options: Any,
    ) -> None:
        if main_thread is None:  # upstream's default is "runner", which it refuses with several runners
            main_thread = "runner" if n_runners == 1 else "algorithm"
        if main_thread not in ("algorithm", "runner"):
            raise ValueError("main_thread must be 'algorithm' or 'runner'")
        if main_thread == "runner" and n_runners != 1:
            raise ValueError("main_thread='runner' requires n_runners == 1")
        options.setdefault("graceful_timeout", graceful_delay)
        super().__init__(n_runners, join_timeout=join_timeout, **options)
        self.main_thread = main_thread
        self.poll_interval = poll_interval
        self.managed_store = resolve_bool_env_var(LightningEnvVar.AGL_MANAGED_STORE, managed_store, True)

    def execute(self, algorithm: AlgorithmBundle, runner: RunnerBundle, store: LightningStore) -> None:
        if self.main_thread == "algorithm":
            algorithm = StopOnInterruptAlgorithm(algorithm)
        else:
            runner = StopOnInterruptRunner(runner)
        try:
            super().execute(algorithm, runner, store)
        except KeyboardInterrupt:
            log_interrupt()
