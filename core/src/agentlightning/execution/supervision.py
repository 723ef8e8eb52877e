"""What happens when runner processes die: their attempts are marked at once, and a run left without runners fails.

The monitor thread of :class:`~agentlightning.execution.MultiProcessExecutionStrategy` sees a runner process exit;
the store lives in the algorithm's event loop. A :class:`RunnerSupervisor` carries the news from one to the other:
:meth:`RunnerSupervisor.guard` runs the algorithm next to a watcher that

- marks the attempts a dead runner left ``preparing``/``running`` as ``unresponsive`` (its process is gone, so it
  will never finish them), with a warning naming the exit code or signal. The rollout then follows its
  :class:`~agentlightning.RolloutConfig`: requeued when ``"unresponsive"`` is in ``retry_condition`` and attempts
  remain, else ``failed``. Without this a rollout whose config has no ``unresponsive_seconds``
  (``rollout_config=None``) would stay ``preparing`` for ever and the algorithm would wait for it for ever;
- raises :class:`RunnersExhaustedError` once no runner is left (every one died and used up its restarts), after
  the dead runners' attempts were marked. Rollouts still queued stay ``queuing``: a later run on the same durable
  store picks them up.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, List, Optional, Tuple

import anyio

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

    from .events import ExecutionEvent

__all__ = ["RunnerSupervisor", "RunnersExhaustedError", "describe_exit"]

logger = logging.getLogger(__name__)

WATCH_SECONDS = 0.2


class RunnersExhaustedError(RuntimeError):
    """Every runner process died and none may be restarted (``max_restarts`` used up): the run cannot go on."""


def describe_exit(exitcode: Optional[int]) -> str:
    """``"killed by signal SIGKILL (exit code -9)"``, ``"exit code 3"``, or ``"no exit code"``."""
    if exitcode is None:
        return "no exit code"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by signal {name} (exit code {exitcode})"
    return f"exit code {exitcode}"


def worker_name(worker_id: int) -> str:
    """The worker id runners use with the store (``Worker-<n>``, as :class:`~agentlightning.LitAgentRunner`)."""
    return f"Worker-{worker_id}"


class RunnerSupervisor:
    """Thread-safe news of runner exits, acted upon in the algorithm's event loop (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exits: List[Tuple[int, Optional[int], float]] = []
        self._exhausted: Optional[str] = None
        self.marked: List[Tuple[str, str]] = []
        """(rollout id, attempt id) of every attempt marked ``unresponsive`` because its runner died."""

    def runner_exited(self, worker_id: int, exitcode: Optional[int]) -> None:
        """A runner process died (called from the monitor thread, before it is restarted)."""
        with self._lock:
            self._exits.append((worker_id, exitcode, time.time()))

    def exhausted(self, message: str) -> None:
        """No runner is left; the run must fail with ``message``."""
        with self._lock:
            self._exhausted = message

    def guard(self, algorithm: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """``algorithm(store, event)`` run next to the watcher; fails with :class:`RunnersExhaustedError`."""

        async def guarded(store: LightningStore, event: ExecutionEvent) -> Any:
            result: List[Any] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch, store)
                result.append(await algorithm(store, event))
                tg.cancel_scope.cancel()
            return result[0] if result else None

        return guarded

    async def _watch(self, store: LightningStore) -> None:
        while True:
            with self._lock:
                exits, self._exits = self._exits, []
                exhausted = self._exhausted
            for worker_id, exitcode, when in exits:
                try:
                    await self._mark_attempts(store, worker_id, exitcode, when)
                except Exception:  # the store may be away for a while: the store's own timeouts remain
                    logger.exception("Could not mark the attempts of dead runner %d", worker_id)
            if exhausted is not None:
                raise RunnersExhaustedError(exhausted)
            await anyio.sleep(WATCH_SECONDS)

    async def _mark_attempts(self, store: LightningStore, worker_id: int, exitcode: Optional[int], when: float) -> None:
        name = worker_name(worker_id)
        for rollout in await store.query_rollouts(status_in=["preparing", "running"]):
            attempt = getattr(rollout, "attempt", None)
            if attempt is None or attempt.worker_id != name or attempt.start_time > when:
                continue
            if attempt.status not in ("preparing", "running"):
                continue
            hint = (
                ""
                if rollout.config.unresponsive_seconds is not None
                else " (its rollout has no unresponsive_seconds: the store alone would wait for it for ever)"
            )
            logger.warning(
                "Runner %d %s during attempt %s of rollout %s; marking the attempt unresponsive%s",
                worker_id, describe_exit(exitcode), attempt.attempt_id, rollout.rollout_id, hint,
            )  # fmt: skip
            await store.update_attempt(rollout.rollout_id, attempt.attempt_id, status="unresponsive")
            self.marked.append((rollout.rollout_id, attempt.attempt_id))
