"""Multi-machine roles of the multi-process strategy: one script, started as the algorithm machine or a runner machine.

``role="algorithm"`` serves the store (``managed_store``) on ``server_host:server_port`` and runs only the algorithm;
``role="runner"`` runs only runners, against the store server at ``http://server_host:server_port``. Both read
upstream v0.3's environment variables when the arguments are not given: ``AGL_CURRENT_ROLE``, ``AGL_SERVER_HOST``,
``AGL_SERVER_PORT`` and ``AGL_MANAGED_STORE``. Runner machines wait for the store server to come up, and stop (exit
code 0) once it has gone away for good: the algorithm machine finished.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import threading
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

import anyio

from ..env_var import LightningEnvVar, resolve_str_env_var
from ._bundles import run_until_stopped
from .base import AlgorithmBundle, RunnerBundle
from .events import MultiprocessingEvent, ThreadingEvent
from .interrupts import run_interruptibly
from .processes import runner_process_main, shutdown_processes
from .store_link import StoreLink, _shared_link, announce_web_apps, create_store_server

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

    from .multiprocess import MultiProcessExecutionStrategy

__all__ = [
    "ROLES",
    "DEFAULT_SPLIT_PORT",
    "resolve_role",
    "execute_role",
]

logger = logging.getLogger(__name__)

ROLES = ("algorithm", "runner", "both")

DEFAULT_SPLIT_PORT = 4747
"""The store server's port when the roles run on different machines and no port was given (upstream's default)."""

PROBE_SECONDS = 1.0
"""How often a runner machine checks that the store server is (still) there."""


def resolve_role(role: Optional[str]) -> str:
    resolved = resolve_str_env_var(LightningEnvVar.AGL_CURRENT_ROLE, role, "both")
    if resolved not in ROLES:
        raise ValueError(
            f"role must be one of {', '.join(ROLES)} (argument role= or AGL_CURRENT_ROLE), got {resolved!r}"
        )
    return resolved


def execute_role(
    strategy: MultiProcessExecutionStrategy, algorithm: AlgorithmBundle, runner: RunnerBundle, store: LightningStore
) -> None:
    """Run the part of the run that ``strategy.role`` (and ``main_process``) says this process has."""
    if strategy.role == "algorithm":
        _execute_algorithm(strategy, algorithm, store)
    elif strategy.role == "runner":
        _execute_runners(strategy, runner, store)
    elif strategy.role == "both" and strategy.main_process == "runner":
        _execute_runner_in_main(strategy, algorithm, runner, store)
    else:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {strategy.role!r}")


def _execute_runner_in_main(
    strategy: MultiProcessExecutionStrategy, algorithm: AlgorithmBundle, runner: RunnerBundle, store: Any
) -> None:
    """The runner on the main thread (to debug the agent), the algorithm on a thread of its own. Upstream runs the
    algorithm in a child process here; a thread gives the same debugging and keeps one store."""
    if not store.capabilities.get("thread_safe"):
        raise ValueError(f"main_process='runner' needs a thread-safe store; {type(store).__name__} is not")
    event = ThreadingEvent()
    errors: List[BaseException] = []

    def algorithm_main() -> None:
        try:
            anyio.run(algorithm, store, event, backend=strategy.backend)
        except BaseException as exc:
            logger.exception("The algorithm failed")
            errors.append(exc)
        finally:
            event.set()

    thread = threading.Thread(target=algorithm_main, name="agl-algorithm", daemon=True)
    thread.start()
    run_runner = functools.partial(
        run_until_stopped, runner, store, 0, event, event=event, graceful_timeout=strategy.graceful_timeout,
        what="runner 0",
    )  # fmt: skip
    try:
        run_interruptibly(run_runner, backend=strategy.backend)
    except BaseException:
        event.set()
        thread.join(strategy.graceful_timeout + strategy.terminate_timeout)
        raise
    thread.join()  # like upstream: once the runner is done, the algorithm finishes by itself
    if errors:
        raise errors[0]


def _execute_algorithm(strategy: MultiProcessExecutionStrategy, algorithm: AlgorithmBundle, store: Any) -> None:
    event = ThreadingEvent()
    server = None
    if strategy.managed_store:
        server = create_store_server(store, host=strategy.server_host, port=strategy.server_port)
        server.start()
        logger.info("Algorithm machine: serving the %s to runner machines at %s", type(store).__name__, server.endpoint)
        announce_web_apps(server)
    try:
        run_interruptibly(algorithm, store, event, backend=strategy.backend)
    finally:
        event.set()
        if server is not None:
            server.stop()


def _store_url(strategy: MultiProcessExecutionStrategy) -> str:
    """The store server URL(s) of runner machines: ``server_host`` may name several store servers of one database,
    comma-separated (``a,b`` on ``server_port``, or ``a:4747,b:4748``); the client spreads requests over them."""
    urls = []
    for entry in strategy.server_host.split(","):
        host, port = entry.strip(), strategy.server_port
        if host.count(":") == 1:  # host:port (an IPv6 address has more colons)
            host, _, given = host.partition(":")
            port = int(given)
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        urls.append(f"http://{host}:{port}")
    return ",".join(urls)


def _runner_link(strategy: MultiProcessExecutionStrategy, store: Any) -> Tuple[StoreLink, bool]:
    """How runners here reach the store, and whether that store is the algorithm machine's server (watched)."""
    if strategy.managed_store:
        return StoreLink(url=_store_url(strategy)), True
    if strategy.n_runners == 1:
        return StoreLink(store=store), False
    link = _shared_link(store, strategy.store_url)
    if link is None:
        raise ValueError(
            "role='runner' with managed_store=False and n_runners > 1 needs a store that runner processes can open "
            f"(capability zero_copy, e.g. an http:// or sqlite:// store); {type(store).__name__} is not"
        )
    return link, False


async def _reachable(store: Any) -> bool:
    try:
        await store.get_latest_resources()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable now"
        logger.debug("Store server not reachable: %r", exc)
        return False
    return True


async def _wait_until_reachable(store: Any, url: str) -> None:
    """Return once the store server has answered: this probe, or any call of the runners sharing ``store`` (a run
    can begin and end between two probes)."""
    announced = False
    while not (getattr(store, "answered", False) or await _reachable(store)):
        if not announced:
            logger.warning("Runner machine: waiting for the store server at %s (the algorithm machine)", url)
            announced = True
        await anyio.sleep(PROBE_SECONDS)


async def _watch_until_gone(store: Any, url: str, event: Any) -> None:
    """Once the store server has answered, set ``event`` when it stops answering (after the client's own retries).

    The runners start at once, as upstream's do: until the server is up, their own store calls wait for it."""
    await _wait_until_reachable(store, url)
    while not event.is_set():
        await anyio.sleep(PROBE_SECONDS)
        if event.is_set():
            return
        if not await _reachable(store):
            logger.warning("Runner machine: the store server at %s has gone away (training over); stopping", url)
            event.set()
            return


def _execute_runners(strategy: MultiProcessExecutionStrategy, runner: RunnerBundle, store: Any) -> None:
    link, watched = _runner_link(strategy, store)
    url = link.url or repr(store)
    if strategy.n_runners == 1:
        _run_one_runner(strategy, runner, link, watched, url)
    else:
        _run_runner_processes(strategy, runner, link, watched, url)


def _run_one_runner(
    strategy: MultiProcessExecutionStrategy, runner: RunnerBundle, link: StoreLink, watched: bool, url: str
) -> None:
    event = ThreadingEvent()

    async def main() -> None:
        opened = link.open()
        try:
            async with anyio.create_task_group() as tg:
                if watched:
                    tg.start_soon(_watch_until_gone, opened, url, event)
                try:
                    await run_until_stopped(
                        runner, opened, 0, event, event=event, graceful_timeout=strategy.graceful_timeout,
                        what="runner 0",
                    )  # fmt: skip
                finally:
                    event.set()
                    tg.cancel_scope.cancel()
        finally:
            if link.url is not None:
                with anyio.CancelScope(shield=True):
                    await opened.close()

    try:
        run_interruptibly(main, backend=strategy.backend)
    finally:
        event.set()


def _run_runner_processes(
    strategy: MultiProcessExecutionStrategy, runner: RunnerBundle, link: StoreLink, watched: bool, url: str
) -> None:
    from .multiprocess import check_picklable

    check_picklable(runner)
    ctx = multiprocessing.get_context(strategy.start_method)
    event = MultiprocessingEvent(ctx=ctx)
    log_level = logging.getLogger("agentlightning").getEffectiveLevel()
    processes: List[Any] = []

    async def supervise() -> None:
        probe = link.open() if watched else None
        try:
            for worker_id in range(strategy.n_runners):
                process = ctx.Process(  # type: ignore[attr-defined]
                    target=runner_process_main,
                    args=(runner, link, worker_id, event, strategy.backend, strategy.graceful_timeout, log_level),
                    name=f"agl-runner-{worker_id}",
                    daemon=True,
                )
                process.start()
                processes.append(process)
                strategy.processes.append(process)
            async with anyio.create_task_group() as tg:
                if probe is not None:
                    tg.start_soon(_watch_until_gone, probe, url, event)
                while any(p.is_alive() for p in processes) and not event.is_set():  # noqa: ASYNC110 - processes
                    await anyio.sleep(0.2)
                event.set()
                tg.cancel_scope.cancel()
        finally:
            if probe is not None:
                with anyio.CancelScope(shield=True):
                    await probe.close()

    try:
        run_interruptibly(supervise, backend=strategy.backend)
    finally:
        event.set()
        shutdown_processes(
            processes, event, graceful_timeout=strategy.graceful_timeout, terminate_timeout=strategy.terminate_timeout
        )
    failed = [(p.name, p.exitcode) for p in processes if p.exitcode not in strategy.allowed_exit_codes]
    if failed:
        raise RuntimeError(f"Runner processes failed with unexpected exit codes: {failed}")
