"""Upstream v0.3's Ctrl-C contract, for the strategies kept under upstream's names.

Upstream's ``SharedMemoryExecutionStrategy`` and ``ClientServerExecutionStrategy`` treat a ``KeyboardInterrupt`` (a
Ctrl-C, or one raised by the bundle on the main thread) as a request to stop: the stop event is set, the other
bundles finish cooperatively, and ``execute()`` returns instead of raising. Our own strategies re-raise it once
everything stopped (see :mod:`~agentlightning.execution.interrupts`); the upstream-named ones return, as upstream's
code written around them expects.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .base import AlgorithmBundle

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

    from .base import RunnerBundle
    from .events import ExecutionEvent

__all__ = ["INTERRUPT_MESSAGE", "StopOnInterruptAlgorithm", "StopOnInterruptRunner", "log_interrupt"]

logger = logging.getLogger(__name__)

INTERRUPT_MESSAGE = "KeyboardInterrupt received on main thread; initiating cooperative shutdown..."


def log_interrupt() -> None:
    logger.warning(INTERRUPT_MESSAGE)


class StopOnInterruptAlgorithm:
    """An algorithm bundle whose ``KeyboardInterrupt`` sets the stop event and ends it as if it had returned."""

    def __init__(self, algorithm: AlgorithmBundle) -> None:
        self.algorithm = algorithm

    async def __call__(self, store: LightningStore, event: ExecutionEvent) -> None:
        try:
            await self.algorithm(store, event)
        except KeyboardInterrupt:
            log_interrupt()
            event.set()


class StopOnInterruptRunner:
    """A runner bundle whose ``KeyboardInterrupt`` sets the stop event and ends it as if it had returned.

    A module-level class, so it pickles whenever the wrapped bundle does."""

    def __init__(self, runner: RunnerBundle) -> None:
        self.runner = runner

    async def __call__(self, store: LightningStore, worker_id: int, event: ExecutionEvent) -> Any:
        try:
            return await self.runner(store, worker_id, event)
        except KeyboardInterrupt:
            log_interrupt()
            event.set()
            return None
