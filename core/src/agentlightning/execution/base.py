"""The execution-strategy contract: how the algorithm and the runners are laid out over threads and processes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

    from .events import ExecutionEvent

__all__ = ["ExecutionStrategy", "AlgorithmBundle", "RunnerBundle"]

AlgorithmBundle = Callable[["LightningStore", "ExecutionEvent"], Awaitable[None]]
"""``async (store, stop_event)``: runs the algorithm; returning means training is over."""


class RunnerBundle(Protocol):
    """``async (store, worker_id, stop_event)``: runs one runner until the event is set.

    Must be picklable for multi-process strategies (the Trainer's bundle is)."""

    async def __call__(self, store: LightningStore, worker_id: int, event: ExecutionEvent) -> None: ...


class ExecutionStrategy:
    """Runs an algorithm bundle and ``n_runners`` runner bundles over a store, and stops them all."""

    n_runners: int = 1

    def execute(self, algorithm: AlgorithmBundle, runner: RunnerBundle, store: LightningStore) -> None:
        """Block until the algorithm finishes (then stop the runners) or fails, or Ctrl-C. Re-raises a bundle's
        exception after everything stopped; a Ctrl-C is re-raised as ``KeyboardInterrupt`` once everything stopped."""
        raise NotImplementedError()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_runners={self.n_runners})"


def check_n_runners(n_runners: Any) -> int:
    if isinstance(n_runners, bool) or not isinstance(n_runners, int) or n_runners < 1:
        raise ValueError(f"n_runners must be an integer >= 1, got {n_runners!r}")
    return n_runners
