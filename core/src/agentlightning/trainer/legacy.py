"""``Trainer.fit_v0`` (deprecated): v0.1 workers that poll an :class:`~agentlightning.server.AgentLightningServer`."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import warnings
from typing import TYPE_CHECKING, Any, List, Optional

if TYPE_CHECKING:
    from agentlightning.client import AgentLightningClient
    from agentlightning.litagent.litagent import LitAgent

__all__ = ["TrainerLegacy"]

logger = logging.getLogger(__name__)


def _as_client(data: Any) -> Optional[AgentLightningClient]:
    from agentlightning.client import AgentLightningClient

    if isinstance(data, str):
        if not data.startswith(("http://", "https://")):
            raise ValueError("String data must be a valid URL starting with http:// or https://")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return AgentLightningClient(endpoint=data)
    if isinstance(data, AgentLightningClient):
        return data
    return None


def run_legacy_worker(
    agent: Any, client: Any, tracer: Any, exporter: Any, worker_id: int, max_tasks: Optional[int], in_process: bool
) -> int:
    """One v0.1 worker: poll tasks from ``client`` and run ``agent`` on them until ``max_tasks`` ran."""
    import anyio

    from agentlightning.runner.legacy import LegacyAgentRunner

    if isinstance(tracer, type):  # sent as its class: it could not be pickled (threads, locks)
        tracer = tracer()
    if not in_process:
        from agentlightning.execution.processes import watch_parent

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
        watch_parent(os.getppid())  # no orphans polling forever if the main process is killed
        logging.basicConfig(level=logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        runner = LegacyAgentRunner(agent, client, tracer, exporter, worker_id=worker_id, max_tasks=max_tasks)
    if not in_process:
        tracer.init()
    tracer.init_worker(worker_id)
    try:
        return anyio.run(runner.iter_async) if agent.is_async() else runner.iter()
    finally:
        tracer.teardown_worker(worker_id)
        if not in_process:
            tracer.teardown()


class TrainerLegacy:
    """``fit_v0``: upstream v0.1's way of running an agent against a task server (deprecated: use ``fit``)."""

    def fit_v0(
        self,
        agent: LitAgent[Any],
        train_data: Any,
        *,
        val_data: Any = None,
        dev_data: Any = None,
        dev_backend: Any = None,
    ) -> None:
        """Run ``n_runners`` (``n_workers``) v0.1 workers against ``train_data`` -- a server URL or an
        :class:`~agentlightning.client.AgentLightningClient` -- or, when the trainer was built with ``dev=True``,
        against ``dev_data`` (e.g. a :class:`~agentlightning.client.DevTaskLoader`). Each worker stops after
        ``max_rollouts`` (``max_tasks``) tasks; without a limit, workers run until interrupted."""
        trainer: Any = self
        warnings.warn("Trainer.fit_v0 is deprecated. Please use Trainer.fit instead.", DeprecationWarning, stacklevel=2)
        if dev_backend is not None:
            warnings.warn("dev_backend is deprecated. Use dev_data instead.", DeprecationWarning, stacklevel=2)
            if dev_data is not None:
                raise ValueError("dev_data and dev_backend cannot be provided at the same time.")
            dev_data = dev_backend
        if getattr(trainer, "dev_mode", False):
            if dev_data is None:
                raise ValueError("dev_data must be provided when dev=True.")
            client = _as_client(dev_data)
            if client is None:
                raise ValueError("dev_data must be a string URL or AgentLightningClient when dev=True.")
        else:
            client = _as_client(train_data)
            if client is None:
                raise ValueError(
                    "Trainer.fit_v0 needs train_data to be a server URL or an AgentLightningClient; "
                    "to train on a dataset use Trainer.fit"
                )
        if trainer.algorithm is not None:
            logger.warning("Trainer.fit_v0 runs only the workers; the algorithm does not run (use Trainer.fit).")
        exporter = trainer.adapter
        trained_agents = getattr(agent, "trained_agents", None)
        if trained_agents and hasattr(exporter, "agent_match"):
            exporter.agent_match = trained_agents
        agent.set_trainer(trainer)
        tracer = trainer.tracer
        n_workers: int = trainer.n_runners
        max_tasks: Optional[int] = trainer.max_rollouts
        if n_workers == 1:
            tracer.init()
            try:
                done = run_legacy_worker(agent, client, tracer, exporter, 0, max_tasks, True)
            finally:
                tracer.teardown()
            logger.info("Single worker finished; tasks processed: %d", done)
            return
        ctx = multiprocessing.get_context("spawn")
        try:
            pickle.dumps(tracer)
        except Exception:  # noqa: BLE001 - as the runner does: rebuilt in each worker from its class
            tracer = type(tracer)
        processes: List[Any] = []
        try:
            for worker_id in range(n_workers):
                process = ctx.Process(
                    target=run_legacy_worker,
                    args=(agent, client, tracer, exporter, worker_id, max_tasks, False),
                    name=f"AgentLightning-Worker-{worker_id}",
                    daemon=trainer.daemon,
                )
                process.start()
                processes.append(process)
            for process in processes:
                process.join()
                if process.exitcode != 0:
                    logger.warning("Worker %s exited with code %s", process.name, process.exitcode)
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
                    process.join(10.0)
                    if process.is_alive():
                        process.kill()
                        process.join()
