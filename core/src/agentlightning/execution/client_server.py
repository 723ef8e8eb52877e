"""Upstream v0.3's module path of the client-server strategy: ours is the multi-process strategy with roles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Optional

from .base import AlgorithmBundle, RunnerBundle
from .multiprocess import MultiProcessExecutionStrategy
from .upstream_interrupts import StopOnInterruptAlgorithm, StopOnInterruptRunner, log_interrupt

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

__all__ = ["ClientServerExecutionStrategy"]


class ClientServerExecutionStrategy(MultiProcessExecutionStrategy):
    """:class:`~agentlightning.execution.MultiProcessExecutionStrategy` with upstream's argument order (``role``
    first). Its shutdown timeouts are ours (5 s and 3 s; upstream waits 10 s and 10 s).

    ``role``, ``server_host``, ``server_port`` and ``managed_store`` default to ``AGL_CURRENT_ROLE``,
    ``AGL_SERVER_HOST``, ``AGL_SERVER_PORT`` and ``AGL_MANAGED_STORE``. Keyword arguments of the multi-process
    strategy (``backend``, ``start_method``, ``max_restarts``...) are accepted too.

    As upstream's, ``execute()`` treats a ``KeyboardInterrupt`` (Ctrl-C, or raised by the algorithm or by a runner
    process) as a stop request: the stop event is set, everything stops and ``execute()`` returns.
    """

    def __init__(
        self,
        role: Optional[str] = None,
        server_host: Optional[str] = None,
        server_port: Optional[int] = None,
        n_runners: int = 1,
        graceful_timeout: float = 5.0,
        terminate_timeout: float = 3.0,
        main_process: str = "algorithm",
        managed_store: Optional[bool] = None,
        allowed_exit_codes: Iterable[int] = (0, -15),
        *,
        store_url: Optional[str] = None,
        **options: Any,
    ) -> None:
        super().__init__(
            n_runners,
            store_url=store_url,
            server_host=server_host,
            server_port=server_port,
            graceful_timeout=graceful_timeout,
            terminate_timeout=terminate_timeout,
            role=role,
            main_process=main_process,
            managed_store=managed_store,
            allowed_exit_codes=tuple(allowed_exit_codes),
            **options,
        )

    def execute(self, algorithm: AlgorithmBundle, runner: RunnerBundle, store: LightningStore) -> None:
        try:
            super().execute(StopOnInterruptAlgorithm(algorithm), StopOnInterruptRunner(runner), store)
        except KeyboardInterrupt:
            log_interrupt()

    def __repr__(self) -> str:
        return f"ClientServerExecutionStrategy(role={self.role!r}, n_runners={self.n_runners})"
