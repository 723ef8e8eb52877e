"""``Runner``: what an execution strategy drives in each worker (init, per-worker init, ``iter``, teardown)."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Generic, Iterator, Optional, Sequence, TypeVar

if TYPE_CHECKING:
    from agentlightning.execution.events import ExecutionEvent
    from agentlightning.litagent.litagent import LitAgent
    from agentlightning.store.base import LightningStore
    from agentlightning.types.core import Rollout, RolloutMode
    from agentlightning.types.resources import NamedResources

    from .hooks import Hook

__all__ = ["Runner"]

logger = logging.getLogger(__name__)

T_task = TypeVar("T_task")


class Runner(Generic[T_task]):
    """Base class of runners. Lifecycle: ``init`` -> ``init_worker`` -> ``iter``/``step`` ... -> ``teardown_worker``
    -> ``teardown``."""

    def init(self, agent: LitAgent[T_task], *, hooks: Optional[Sequence[Hook]] = None, **kwargs: Any) -> None:
        raise NotImplementedError()

    def init_worker(self, worker_id: int, store: LightningStore, **kwargs: Any) -> None:
        raise NotImplementedError()

    def teardown(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError()

    def teardown_worker(self, worker_id: int, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError()

    def run(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("The behavior of run() of Runner is undefined. Use iter() or step() instead.")

    async def iter(self, *, event: Optional[ExecutionEvent] = None) -> None:
        """Execute rollouts from the store's queue until ``event`` is set (or ``max_rollouts`` is reached)."""
        raise NotImplementedError()

    async def step(
        self,
        input: T_task,
        *,
        resources: Optional[NamedResources] = None,
        mode: Optional[RolloutMode] = None,
        event: Optional[ExecutionEvent] = None,
    ) -> Rollout:
        """Run one rollout of ``input`` now, outside the queue, and return it finished."""
        raise NotImplementedError()

    @contextlib.contextmanager
    def run_context(
        self,
        *,
        agent: LitAgent[T_task],
        store: LightningStore,
        hooks: Optional[Sequence[Hook]] = None,
        worker_id: Optional[int] = None,
    ) -> Iterator[Runner[T_task]]:
        """``init`` + ``init_worker`` around the body, torn down (only the steps that ran) afterwards.

        Unlike upstream, which always used worker 0, ``worker_id`` is honoured."""
        wid = worker_id or 0
        self.init(agent=agent, hooks=hooks)
        try:
            self.init_worker(wid, store)
            try:
                yield self
            finally:
                _quietly(self.teardown_worker, wid)
        finally:
            _quietly(self.teardown)


def _quietly(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("Runner teardown step %s failed", getattr(fn, "__name__", fn))
