"""``LitAgentRunner``: claims rollouts from the store, runs the agent under a trace context, records the outcome."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set, Tuple

import anyio
import anyio.to_thread

from agentlightning.types.core import AttemptedRollout, AttemptStatus, Rollout, RolloutMode
from agentlightning.types.resources import NamedResources

from .base import Runner, T_task
from .heartbeat import jittered, system_snapshot
from .hooks import Hook, as_hook_list, call_hooks
from .results import record_result

if TYPE_CHECKING:
    from agentlightning.execution.events import ExecutionEvent
    from agentlightning.litagent.litagent import LitAgent
    from agentlightning.store.base import LightningStore
    from agentlightning.tracer.base import Tracer

__all__ = ["LitAgentRunner", "NoResourcesError"]

logger = logging.getLogger(__name__)

STOP_CHECK_SECONDS = 0.1
STATUS_WRITE_SECONDS = 300.0
"""The most a rollout's final status write may take: longer than a store client waits for a server that restarts
(120 s by default), so a store restart does not cost a finished rollout (a stopping run terminates it sooner)."""


class NoResourcesError(RuntimeError):
    """The rollout names a ``resources_id`` the store does not have."""


class LitAgentRunner(Runner[T_task]):
    """Runs a :class:`~agentlightning.litagent.LitAgent` over the rollouts of a store.

    Args:
        tracer: records the agent's spans (default: an :class:`~agentlightning.tracer.otel.OtelTracer`).
        max_rollouts: stop ``iter`` after claiming this many rollouts (None: until the stop event).
        poll_interval: seconds between dequeue attempts while the queue is empty (jittered).
        heartbeat_interval: seconds between worker heartbeats (``update_worker`` with system statistics, plus a
            ``last_heartbeat_time`` on each attempt in progress so the store's ``unresponsive_seconds`` detects a
            dead runner). 0 disables them.
        interval_jitter: random spread (± seconds) of both intervals, so many runners do not poll in lockstep.
        heartbeat_include_gpu: add GPU statistics to heartbeats.
        max_concurrency: rollouts run at once by this runner (upstream: always 1). Async agents run as tasks of
            the runner's event loop; sync agents run in worker threads.
        heartbeat_launch_mode: upstream's choice of where heartbeats run (``"asyncio"`` or ``"thread"``), accepted
            and kept: heartbeats here always run as a task of the runner's loop with the system statistics read in a
            worker thread, which keeps them on time whichever upstream mode was asked for.

    Differences from upstream: a rollout whose ``resources_id`` is unknown fails its attempt (upstream left it
    ``preparing`` for ever; see docs/store.md); a rollout without any resources runs with ``{}``. Sync agents run
    in a worker thread instead of blocking the event loop, so heartbeats and the stop event stay responsive.
    """

    def __init__(
        self,
        tracer: Optional[Tracer] = None,
        max_rollouts: Optional[int] = None,
        poll_interval: float = 1.0,
        heartbeat_interval: float = 10.0,
        interval_jitter: float = 0.25,
        heartbeat_include_gpu: bool = False,
        max_concurrency: int = 1,
        heartbeat_launch_mode: str = "thread",
    ) -> None:
        if heartbeat_launch_mode not in ("asyncio", "thread"):
            raise ValueError(f"heartbeat_launch_mode must be 'asyncio' or 'thread', got {heartbeat_launch_mode!r}")
        if max_rollouts is not None and max_rollouts < 0:
            raise ValueError(f"max_rollouts must be >= 0 or None, got {max_rollouts}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval}")
        self._tracer = tracer
        self.max_rollouts = max_rollouts
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.interval_jitter = interval_jitter
        self.heartbeat_include_gpu = heartbeat_include_gpu
        self.max_concurrency = max_concurrency
        self.heartbeat_launch_mode = heartbeat_launch_mode
        self._agent: Optional[LitAgent[Any]] = None
        self._hooks: List[Hook] = []
        self._store: Optional[LightningStore] = None
        self.worker_id: Optional[int] = None
        self._active: Set[Tuple[str, str]] = set()

    def __getstate__(self) -> Dict[str, Any]:
        """Runner processes receive the configuration only; a tracer that cannot be pickled (threads, locks) is
        rebuilt there from its class with default arguments."""
        import pickle

        state = {k: v for k, v in self.__dict__.items() if k not in ("_agent", "_hooks", "_store", "_active")}
        tracer = state.get("_tracer")
        if tracer is not None:
            try:
                pickle.dumps(tracer)
            except Exception:  # noqa: BLE001 - pickling may fail in any way; then the class is sent instead
                state["_tracer"] = None
                state["_tracer_class"] = type(tracer)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        tracer_class = state.pop("_tracer_class", None)
        self.__dict__.update(state)
        self._agent, self._hooks, self._store, self._active = None, [], None, set()
        if tracer_class is not None:
            self._tracer = tracer_class()

    # -- lifecycle ------------------------------------------------------------------------------------------------

    @property
    def tracer(self) -> Tracer:
        if self._tracer is None:
            from agentlightning.tracer.otel import OtelTracer

            self._tracer = OtelTracer()
        return self._tracer

    def init(self, agent: LitAgent[Any], *, hooks: Optional[Sequence[Hook]] = None, **kwargs: Any) -> None:
        self._agent = agent
        self._hooks = as_hook_list(hooks)
        agent.set_runner(self)
        self.tracer.init()

    def init_worker(self, worker_id: int, store: LightningStore, **kwargs: Any) -> None:
        self._store = store
        self.worker_id = worker_id
        self.tracer.init_worker(worker_id, store)

    def teardown(self, *args: Any, **kwargs: Any) -> None:
        self._agent = None
        self._hooks = []
        self._store = None
        self.tracer.teardown()

    def teardown_worker(self, worker_id: int, *args: Any, **kwargs: Any) -> None:
        self.worker_id = None
        self.tracer.teardown_worker(worker_id)

    def get_agent(self) -> LitAgent[Any]:
        if self._agent is None:
            raise ValueError("Agent not initialized. Call init() first.")
        return self._agent

    def get_store(self) -> LightningStore:
        if self._store is None:
            raise ValueError("Store not initialized. Call init_worker() first.")
        return self._store

    def get_worker_id(self) -> str:
        """The worker id used with the store: ``Worker-<n>``."""
        return f"Worker-{self.worker_id}" if self.worker_id is not None else "Worker-Unknown"

    # -- the queue loop -------------------------------------------------------------------------------------------

    async def iter(self, *, event: Optional[ExecutionEvent] = None) -> None:
        """Claim and run rollouts until ``event`` is set or ``max_rollouts`` were claimed; in-flight rollouts
        finish before it returns."""
        claimed = 0
        slots = anyio.Semaphore(self.max_concurrency)
        if self._heartbeats_enabled():
            await self._emit_heartbeat()  # the worker and its statistics are known before it claims anything
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._heartbeat_loop)
            async with anyio.create_task_group() as rollouts:
                while self.max_rollouts is None or claimed < self.max_rollouts:
                    await slots.acquire()
                    rollout = await self._wait_for_rollout(event)
                    if rollout is None:
                        slots.release()
                        break
                    claimed += 1
                    rollouts.start_soon(self._run_and_release, rollout, slots)
            outer.cancel_scope.cancel()

    async def _run_and_release(self, rollout: AttemptedRollout, slots: anyio.Semaphore) -> None:
        try:
            await self._step_impl(rollout)
        finally:
            slots.release()

    async def _wait_for_rollout(self, event: Optional[ExecutionEvent]) -> Optional[AttemptedRollout]:
        """Poll the queue until a rollout is claimed; None once ``event`` is set."""
        store = self.get_store()
        while event is None or not event.is_set():
            try:
                rollout = await store.dequeue_rollout(worker_id=self.get_worker_id())
            except Exception:
                logger.exception("%s: dequeue failed; retrying", self.get_worker_id())
                rollout = None
            if rollout is not None:
                return rollout
            deadline = time.monotonic() + jittered(self.poll_interval, self.interval_jitter)
            while time.monotonic() < deadline:
                if event is not None and event.is_set():
                    return None
                await anyio.sleep(min(STOP_CHECK_SECONDS, max(0.0, deadline - time.monotonic())))
        return None

    # -- one rollout ----------------------------------------------------------------------------------------------

    async def _fetch_resources(self, rollout: Rollout) -> NamedResources:
        store = self.get_store()
        if rollout.resources_id:
            update = await store.get_resources_by_id(rollout.resources_id)
            if update is None:
                raise NoResourcesError(
                    f"Rollout {rollout.rollout_id} names resources {rollout.resources_id!r}, "
                    "which the store does not have"
                )
            return update.resources
        update = await store.get_latest_resources()
        return update.resources if update is not None else {}

    async def _call_agent(self, rollout: AttemptedRollout, resources: NamedResources) -> Any:
        agent = self.get_agent()
        train = rollout.mode == "train"  # every other mode (val, test, None) validates, as upstream
        if agent.is_async():
            method = agent.training_rollout_async if train else agent.validation_rollout_async
            return await method(rollout.input, resources=resources, rollout=rollout)
        sync_method = agent.training_rollout if train else agent.validation_rollout

        def call() -> Any:
            return sync_method(rollout.input, resources=resources, rollout=rollout)

        # The context (hence the active tracer) is copied into the thread; a cancelled run abandons the thread.
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)

    async def _step_impl(self, rollout: AttemptedRollout, raise_on_exception: bool = False) -> str:
        """Run one claimed rollout; returns its id. The attempt ends ``succeeded`` or ``failed``."""
        agent, store, tracer = self.get_agent(), self.get_store(), self.tracer
        rollout_id, attempt_id = rollout.rollout_id, rollout.attempt.attempt_id
        spans: List[Any] = []
        error: Optional[BaseException] = None
        interrupted = False
        self._active.add((rollout_id, attempt_id))
        try:
            await call_hooks(self._hooks, "on_rollout_start", agent=agent, runner=self, rollout=rollout)
            resources = await self._fetch_resources(rollout)
            async with tracer.trace_context(name=rollout_id, store=store, rollout_id=rollout_id, attempt_id=attempt_id):
                await call_hooks(
                    self._hooks, "on_trace_start", agent=agent, runner=self, tracer=tracer, rollout=rollout
                )
                result = await self._call_agent(rollout, resources)
                await call_hooks(self._hooks, "on_trace_end", agent=agent, runner=self, tracer=tracer, rollout=rollout)
            traced = tracer.get_last_trace()  # no await since the context closed: this rollout's spans
            spans = await record_result(
                result, store=store, tracer=tracer, rollout_id=rollout_id, attempt_id=attempt_id, traced=traced
            )
            from agentlightning.emitter.reward import find_final_reward

            logger.debug(
                "%s: rollout %s finished, reward %s", self.get_worker_id(), rollout_id, find_final_reward(spans)
            )
        except Exception as exc:
            error = exc
            logger.exception("%s: rollout %s attempt %s failed", self.get_worker_id(), rollout_id, attempt_id)
        except BaseException:
            # Cancelled (the run is stopping): the attempt did not finish, so no final status is written. The
            # store's unresponsive timeout, or Baseline on resume, puts the rollout back in the queue.
            interrupted = True
            logger.warning("%s: rollout %s interrupted", self.get_worker_id(), rollout_id)
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await call_hooks(self._hooks, "on_rollout_end", agent=agent, runner=self, rollout=rollout, spans=spans)
                if not interrupted:
                    await self._write_status(rollout_id, attempt_id, "failed" if error is not None else "succeeded")
                self._active.discard((rollout_id, attempt_id))
        if error is not None and raise_on_exception:
            raise error
        return rollout_id

    async def _write_status(self, rollout_id: str, attempt_id: str, status: AttemptStatus) -> None:
        try:
            with anyio.fail_after(STATUS_WRITE_SECONDS):
                await self.get_store().update_attempt(rollout_id, attempt_id, status=status)
        except Exception:
            logger.exception("Could not write status %s of rollout %s attempt %s", status, rollout_id, attempt_id)

    async def step(
        self,
        input: Any,
        *,
        resources: Optional[NamedResources] = None,
        mode: Optional[RolloutMode] = None,
        event: Optional[ExecutionEvent] = None,
    ) -> Rollout:
        """Run ``input`` once now (not through the queue); returns the finished rollout. Agent errors propagate."""
        store = self.get_store()
        resources_id = (await store.add_resources(resources)).resources_id if resources is not None else None
        attempted = await store.start_rollout(
            input=input, mode=mode, resources_id=resources_id, worker_id=self.get_worker_id()
        )
        await self._step_impl(attempted, raise_on_exception=True)
        finished = await store.get_rollout_by_id(attempted.rollout_id)
        if finished is None:
            raise RuntimeError(f"Failed to fetch completed rollout by id after step: {attempted.rollout_id}")
        return finished

    # -- heartbeats -----------------------------------------------------------------------------------------------

    def _heartbeats_enabled(self) -> bool:
        if self.heartbeat_interval <= 0:
            return False
        if self.worker_id is None:
            logger.warning("Cannot start heartbeat loop without worker_id")
            return False
        return True

    async def _heartbeat_loop(self) -> None:
        if not self._heartbeats_enabled():
            return
        while True:
            await anyio.sleep(jittered(self.heartbeat_interval, self.interval_jitter))
            await self._emit_heartbeat()

    async def _emit_heartbeat(self) -> None:
        store = self.get_store()
        with anyio.move_on_after(self.heartbeat_interval):
            try:
                stats = await anyio.to_thread.run_sync(system_snapshot, self.heartbeat_include_gpu)
                await store.update_worker(self.get_worker_id(), stats)
                now = time.time()
                for rollout_id, attempt_id in list(self._active):
                    await store.update_attempt(rollout_id, attempt_id, last_heartbeat_time=now)
            except Exception:
                logger.warning("%s: heartbeat failed", self.get_worker_id(), exc_info=True)
