"""Runner processes: the child entry point and the escalating shutdown (stop event, SIGTERM, SIGKILL)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any, List, Sequence

__all__ = ["runner_process_main", "shutdown_processes", "watch_parent"]

logger = logging.getLogger(__name__)


def watch_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Exit this process when its parent dies (no orphans even if the main process is SIGKILLed)."""

    def loop() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(3)

    threading.Thread(target=loop, name="agl-parent-watch", daemon=True).start()


def runner_process_main(
    runner: Any, link: Any, worker_id: int, event: Any, backend: str, graceful_timeout: float, log_level: int
) -> None:
    """Entry point of a runner process (spawned): open the store, run the runner bundle until the stop event."""
    import anyio

    from ._bundles import run_until_stopped

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to coordinate
    if hasattr(os, "getppid"):
        watch_parent(os.getppid())
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s [runner-" + str(worker_id) + "] %(name)s: %(message)s"
    )
    logging.getLogger("agentlightning").setLevel(log_level)
    store = link.open()

    async def main() -> None:
        try:
            await run_until_stopped(
                runner, store, worker_id, event, event=event, graceful_timeout=graceful_timeout,
                what=f"runner {worker_id}",
            )  # fmt: skip
        finally:
            with anyio.CancelScope(shield=True):
                await store.close()

    anyio.run(main, backend=backend)


def _alive(processes: Sequence[Any]) -> List[Any]:
    return [p for p in processes if p.is_alive()]


def _join_until(processes: Sequence[Any], deadline: float) -> List[Any]:
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    return _alive(processes)


def shutdown_processes(
    processes: Sequence[Any], event: Any, *, graceful_timeout: float, terminate_timeout: float
) -> None:
    """Set ``event`` and wait ``graceful_timeout``; then SIGTERM and wait ``terminate_timeout``; then SIGKILL.
    A Ctrl-C while waiting skips straight to SIGKILL (and is re-raised)."""
    try:
        event.set()
        alive = _join_until(processes, time.monotonic() + graceful_timeout)
        if alive:
            logger.warning("Terminating %d runner process(es) that did not stop in time", len(alive))
            for process in alive:
                _signal(process, "terminate")
            alive = _join_until(alive, time.monotonic() + terminate_timeout)
    except KeyboardInterrupt:
        _kill(_alive(processes))
        raise
    _kill(alive)


def _signal(process: Any, method: str) -> None:
    try:
        getattr(process, method)()
    except Exception:  # noqa: BLE001, S110 - already gone or closed: nothing to signal
        pass


def _kill(processes: Sequence[Any]) -> None:
    for process in processes:
        logger.error("Killing runner process %s (pid %s)", process.name, process.pid)
        _signal(process, "kill")
    for process in processes:
        process.join(5.0)
