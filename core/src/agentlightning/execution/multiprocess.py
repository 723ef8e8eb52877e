"""``MultiProcessExecutionStrategy`` ("multiprocess", alias "cs"): the algorithm here, runners in processes."""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from ..env_var import LightningEnvVar, resolve_bool_env_var, resolve_int_env_var, resolve_str_env_var
from ._bundles import resolve_backend, unwrap_group
from .base import AlgorithmBundle, ExecutionStrategy, RunnerBundle, check_n_runners
from .events import MultiprocessingEvent
from .interrupts import run_interruptibly
from .processes import runner_process_main, shutdown_processes
from .roles import DEFAULT_SPLIT_PORT, execute_role, resolve_role
from .store_link import link_store
from .supervision import RunnerSupervisor, describe_exit

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

__all__ = ["MultiProcessExecutionStrategy"]

logger = logging.getLogger(__name__)

MONITOR_SECONDS = 0.2


def check_picklable(runner: RunnerBundle) -> None:
    """Runner processes receive the runner bundle (agent, runner, hooks) pickled; say so clearly when it is not."""
    try:
        pickle.dumps(runner)
    except Exception as exc:
        raise TypeError(
            f"The agent, runner and hooks must be picklable to run in runner processes ({exc}). Define the agent "
            "at module level (not inside a function), or use strategy='inprocess'."
        ) from exc


class MultiProcessExecutionStrategy(ExecutionStrategy):
    """Runs the algorithm in this process and each runner in a process of its own (started with ``spawn``).

    Runner processes open the store themselves when it is shared across processes (capability ``zero_copy``:
    SQLite, the HTTP client); any other store (the memory store) is served to them over HTTP from this process
    by ``LightningStoreServer`` (agentlightning-server).

    Stopping: when the algorithm returns or fails, or on Ctrl-C, the stop event is set; runners get
    ``graceful_timeout`` seconds to finish their rollouts, then SIGTERM, then after ``terminate_timeout`` SIGKILL.
    Runner processes ignore SIGINT (a terminal's Ctrl-C reaches the whole process group) and exit by themselves if
    this process dies. A runner process that dies while the algorithm runs is restarted (``max_restarts`` per
    worker); the attempt it was running is marked ``unresponsive`` at once and retried per its rollout's config
    (see :mod:`~agentlightning.execution.supervision`). Once every runner died with no restart left, the run fails
    with :class:`~agentlightning.execution.supervision.RunnersExhaustedError`. Runner processes are daemonic: an
    agent may run subprocesses, but not ``multiprocessing`` children of its own.

    Args:
        n_runners: runner processes (worker ids 0..n-1).
        store_url: the URL the store was opened with (lets processes reopen it without pickling).
        server_host, server_port: where the HTTP store server listens when one is needed (port 0: any free port).
        start_method: multiprocessing start method ("spawn" by default; "forkserver" works too).
        backend: event loop of the runner processes and the algorithm, "asyncio" or "trio".
        role: ``"both"`` (default; env ``AGL_CURRENT_ROLE``): algorithm and runners here. ``"algorithm"``: only the
            algorithm, serving the store on ``server_host:server_port`` for runner machines. ``"runner"``: only the
            runners, against the store server at ``http://server_host:server_port`` (their calls wait for it to come
            up; they stop once it has gone away). Start the same script on every machine with its role; see
            docs/runtime.md.
        server_host, server_port: also from ``AGL_SERVER_HOST`` / ``AGL_SERVER_PORT``; the port defaults to 4747
            when the roles are split, to any free port with ``role="both"``.
        managed_store: (env ``AGL_MANAGED_STORE``, default True) whether the algorithm machine serves the store and
            runner machines connect to that server; False: each side uses the store it was given as is.
        main_process: with ``role="both"``, ``"runner"`` runs the single runner on the main thread and the algorithm
            on another thread of this process (for debugging the agent).
        allowed_exit_codes: runner machines' process exit codes that do not count as failures.
    """

    alias = "multiprocess"

    def __init__(
        self,
        n_runners: int = 1,
        *,
        store_url: Optional[str] = None,
        server_host: Optional[str] = None,
        server_port: Optional[int] = None,
        start_method: str = "spawn",
        backend: Optional[str] = None,
        graceful_timeout: float = 5.0,
        terminate_timeout: float = 3.0,
        max_restarts: int = 3,
        role: Optional[str] = None,
        main_process: str = "algorithm",
        managed_store: Optional[bool] = None,
        allowed_exit_codes: Sequence[int] = (0, -15),
        **legacy: Any,
    ) -> None:
        if legacy:
            raise TypeError(f"MultiProcessExecutionStrategy got unexpected arguments: {', '.join(sorted(legacy))}")
        self.n_runners = check_n_runners(n_runners)
        self.role = resolve_role(role)
        if main_process not in ("algorithm", "runner"):
            raise ValueError(f"main_process must be 'algorithm' or 'runner', got {main_process!r}")
        if main_process == "runner" and (self.role != "both" or self.n_runners != 1):
            raise ValueError("main_process='runner' is only supported with role='both' and n_runners=1")
        self.main_process = main_process
        self.managed_store = resolve_bool_env_var(LightningEnvVar.AGL_MANAGED_STORE, managed_store, True)
        self.allowed_exit_codes = tuple(allowed_exit_codes)
        default_port = 0 if self.role == "both" else DEFAULT_SPLIT_PORT
        server_host = resolve_str_env_var(LightningEnvVar.AGL_SERVER_HOST, server_host, "127.0.0.1")
        server_port = resolve_int_env_var(LightningEnvVar.AGL_SERVER_PORT, server_port, default_port)
        assert server_host is not None and server_port is not None
        self.store_url = store_url
        self.server_host = server_host
        self.server_port = server_port
        self.start_method = start_method
        self.backend = resolve_backend(backend)
        self.graceful_timeout = graceful_timeout
        self.terminate_timeout = terminate_timeout
        self.max_restarts = max_restarts
        self.processes: List[Any] = []
        self.restarts: Dict[int, int] = {}

    def execute(self, algorithm: AlgorithmBundle, runner: RunnerBundle, store: LightningStore) -> None:
        if self.role != "both" or self.main_process != "algorithm":
            execute_role(self, algorithm, runner, store)
            return
        check_picklable(runner)
        ctx = multiprocessing.get_context(self.start_method)
        event = MultiprocessingEvent(ctx=ctx)
        link, server = link_store(store, url=self.store_url, host=self.server_host, port=self.server_port)
        slots: Dict[int, Any] = {}
        self.restarts = {}
        log_level = logging.getLogger("agentlightning").getEffectiveLevel()

        def spawn(worker_id: int) -> None:
            process = ctx.Process(  # type: ignore[attr-defined]
                target=runner_process_main,
                args=(runner, link, worker_id, event, self.backend, self.graceful_timeout, log_level),
                name=f"agl-runner-{worker_id}",
                daemon=True,  # never outlives this process, even if shutdown is cut short
            )
            process.start()
            slots[worker_id] = process
            self.processes.append(process)

        stop_monitor = threading.Event()
        supervisor = RunnerSupervisor()
        deaths: Dict[int, str] = {}  # worker id -> how its last process ended

        def monitor() -> None:
            while not stop_monitor.wait(MONITOR_SECONDS):
                for worker_id, process in list(slots.items()):
                    if process.is_alive() or event.is_set() or stop_monitor.is_set():
                        continue
                    if process.exitcode == 0:  # finished by itself (max_rollouts)
                        del slots[worker_id]
                        continue
                    how = describe_exit(process.exitcode)
                    supervisor.runner_exited(worker_id, process.exitcode)
                    restarts = self.restarts.get(worker_id, 0)
                    if restarts >= self.max_restarts:
                        logger.error("Runner %d exited: %s; no restarts left", worker_id, how)
                        del slots[worker_id]
                        deaths[worker_id] = how
                        if not slots:
                            supervisor.exhausted(_exhausted_message(deaths, self.max_restarts))
                        continue
                    logger.warning("Runner %d exited: %s; restarting it", worker_id, how)
                    self.restarts[worker_id] = restarts + 1
                    spawn(worker_id)

        monitor_thread = threading.Thread(target=monitor, name="agl-runner-monitor", daemon=True)
        try:
            for worker_id in range(self.n_runners):
                spawn(worker_id)
            monitor_thread.start()
            try:
                run_interruptibly(supervisor.guard(algorithm), store, event, backend=self.backend)
            except BaseException as exc:
                inner = unwrap_group(exc)
                if inner is exc:
                    raise
                raise inner from None
        finally:
            stop_monitor.set()
            event.set()
            if monitor_thread.is_alive():
                monitor_thread.join(2.0)
            started = time.monotonic()
            shutdown_processes(
                list(slots.values()), event,
                graceful_timeout=self.graceful_timeout, terminate_timeout=self.terminate_timeout,
            )  # fmt: skip
            logger.debug("Runner processes stopped in %.2f s", time.monotonic() - started)
            if server is not None:
                server.stop()


def _exhausted_message(deaths: Dict[int, str], max_restarts: int) -> str:
    runners = "; ".join(f"runner {worker_id}: {how}" for worker_id, how in sorted(deaths.items()))
    return (
        f"No runner process is left (restarts used up, max_restarts={max_restarts}); last exits: {runners}. The dead "
        "runners' attempts were marked unresponsive; queued rollouts stay queued for a later run."
    )
