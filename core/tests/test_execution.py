"""Execution strategies: in-process tasks/threads, stop and failure propagation, store sharing, process shutdown."""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from typing import Any, List

import anyio
import anyio.lowlevel
import pytest
from agentlightning.execution import (
    InProcessExecutionStrategy,
    MultiProcessExecutionStrategy,
    MultiprocessingEvent,
    StoreServer,
    ThreadingEvent,
    link_store,
)
from agentlightning.execution._bundles import run_until_stopped, unwrap_group
from agentlightning.execution.processes import shutdown_processes
from agentlightning.plugins import ComponentTypeError, PluginManager, Register, UnknownComponentError, hookimpl


def memory_store() -> Any:
    from agentlightning_memory import InMemoryLightningStore

    return InMemoryLightningStore(watchdog_interval=None)


class Recorder:
    """A runner bundle that records which worker ran in which thread, until stopped."""

    def __init__(self) -> None:
        self.calls: List[tuple[int, str]] = []

    async def __call__(self, store: Any, worker_id: int, event: Any) -> None:
        self.calls.append((worker_id, threading.current_thread().name))
        while not event.is_set():  # noqa: ASYNC110 - a thread or process event: polled, not awaited
            await anyio.sleep(0.01)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("mode", ["tasks", "threads"])
def test_in_process_runs_every_runner_and_stops_them_when_the_algorithm_returns(backend: str, mode: str) -> None:
    recorder = Recorder()

    async def algorithm(store: Any, event: Any) -> None:
        while len(recorder.calls) < 3:  # noqa: ASYNC110 - runners in threads and processes: polled
            await anyio.sleep(0.01)

    started = time.monotonic()
    InProcessExecutionStrategy(n_runners=3, mode=mode, backend=backend).execute(algorithm, recorder, memory_store())
    assert sorted(w for w, _ in recorder.calls) == [0, 1, 2]
    threads = {t for _, t in recorder.calls}
    assert len(threads) == (3 if mode == "threads" else 1)
    assert time.monotonic() - started < 10


def test_runner_failure_stops_the_algorithm_and_is_raised() -> None:
    finished: List[str] = []

    async def algorithm(store: Any, event: Any) -> None:
        while not event.is_set():  # noqa: ASYNC110 - a thread or process event: polled, not awaited
            await anyio.sleep(0.01)
        finished.append("algorithm")  # it saw the stop event and returned by itself, not cancelled

    async def runner(store: Any, worker_id: int, event: Any) -> None:
        raise ConnectionError("runner lost the store")

    with pytest.raises(ConnectionError, match="runner lost the store"):
        InProcessExecutionStrategy(n_runners=2).execute(algorithm, runner, memory_store())
    assert finished == ["algorithm"]


def test_an_algorithm_ignoring_a_runner_failure_is_cancelled_after_the_grace_period() -> None:
    async def algorithm(store: Any, event: Any) -> None:
        await anyio.sleep(60)

    async def runner(store: Any, worker_id: int, event: Any) -> None:
        raise ConnectionError("runner lost the store")

    started = time.monotonic()
    with pytest.raises(ConnectionError, match="runner lost the store"):
        InProcessExecutionStrategy(graceful_timeout=0.3).execute(algorithm, runner, memory_store())
    assert time.monotonic() - started < 10


def test_the_stop_event_is_left_alone_when_no_runner_is_left_to_stop() -> None:
    events: List[Any] = []

    async def algorithm(store: Any, event: Any) -> None:
        events.append(event)
        await anyio.sleep(0.1)  # the runner has finished by itself by then

    async def runner(store: Any, worker_id: int, event: Any) -> None:
        await anyio.lowlevel.checkpoint()

    InProcessExecutionStrategy().execute(algorithm, runner, memory_store())
    assert not events[0].is_set()


def test_runner_thread_failure_is_raised_after_the_algorithm_stopped() -> None:
    async def algorithm(store: Any, event: Any) -> None:
        while not event.is_set():  # noqa: ASYNC110 - a thread or process event: polled, not awaited
            await anyio.sleep(0.01)

    async def runner(store: Any, worker_id: int, event: Any) -> None:
        raise KeyError("thread runner bug")

    with pytest.raises(KeyError, match="thread runner bug"):
        InProcessExecutionStrategy(n_runners=1, mode="threads").execute(algorithm, runner, memory_store())


def test_a_runner_ignoring_the_stop_event_is_cancelled_after_the_grace_period() -> None:
    async def algorithm(store: Any, event: Any) -> None:
        return None

    async def stubborn(store: Any, worker_id: int, event: Any) -> None:
        await anyio.sleep(60)

    started = time.monotonic()
    InProcessExecutionStrategy(graceful_timeout=0.3).execute(algorithm, stubborn, memory_store())
    assert time.monotonic() - started < 10


def test_run_until_stopped_returns_the_result_when_it_finishes_first() -> None:
    async def work() -> str:
        return "done"

    assert anyio.run(lambda: run_until_stopped(work, event=ThreadingEvent(), graceful_timeout=1, what="w")) == "done"


def test_unwrap_group_takes_out_a_single_exception() -> None:
    inner = ValueError("x")

    class Group(Exception):
        def __init__(self, *members: BaseException) -> None:
            self.exceptions = members

    assert unwrap_group(Group(Group(inner), KeyError("y"))) is inner
    assert unwrap_group(inner) is inner


def test_strategy_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="mode must be"):
        InProcessExecutionStrategy(mode="fibers")
    with pytest.raises(ValueError, match="backend must be"):
        InProcessExecutionStrategy(backend="curio")
    with pytest.raises(TypeError, match="unexpected arguments: bogus"):
        MultiProcessExecutionStrategy(bogus=1)
    assert MultiProcessExecutionStrategy(role="both", managed_store=True, n_runners=2).n_runners == 2  # upstream knobs


def test_threads_mode_refuses_a_store_that_is_not_thread_safe() -> None:
    class Unsafe:
        capabilities = {"thread_safe": False}

    with pytest.raises(ValueError, match="thread-safe store"):
        InProcessExecutionStrategy(mode="threads").execute(None, None, Unsafe())  # type: ignore[arg-type]


# -- store sharing -----------------------------------------------------------------------------------------------


def test_sqlite_store_is_reopened_by_url_and_memory_store_is_served(tmp_path: Any) -> None:
    from agentlightning_sqlite import SqliteLightningStore

    sqlite = SqliteLightningStore(str(tmp_path / "run.db"), watchdog_interval=None)
    link, server = link_store(sqlite)
    assert server is None and link.url == f"sqlite:///{tmp_path / 'run.db'}"
    link, server = link_store(sqlite, url="sqlite:///rel.db")
    assert link.url == "sqlite:///rel.db"
    link, server = link_store(memory_store())
    try:
        assert server is not None and link.url == server.endpoint and link.url.startswith("http://127.0.0.1:")
        client = link.open()
        assert type(client).__name__ == "LightningStoreClient"
    finally:
        server.stop()


def test_without_a_store_server_plugin_the_error_says_what_is_missing(plugin_manager: PluginManager) -> None:
    with pytest.raises(UnknownComponentError) as caught:
        link_store(memory_store())
    message = str(caught.value)
    assert "InMemoryLightningStore, which other processes cannot open, through a store server" in message
    assert "no store server named 'http'; installed: none" in message and "agl plugins" in message


def test_store_servers_come_from_plugins_and_are_kind_checked(plugin_manager: PluginManager) -> None:
    from agentlightning_server.server import LightningStoreServer

    class Servers:
        @hookimpl
        def agentlightning_register_store_servers(self, register: Register) -> None:
            register("http", LightningStoreServer)
            register("broken", lambda store, host, port: object())

    plugin_manager.register(Servers(), "servers")
    with pytest.raises(ComponentTypeError, match="store server 'broken' registered by plugin 'servers' built a"):
        link_store(memory_store(), server="broken")
    link, server = link_store(memory_store())
    try:
        assert isinstance(server, LightningStoreServer) and isinstance(server, StoreServer)
        assert link.url == server.endpoint
    finally:
        assert server is not None
        server.stop()


def test_a_shared_store_that_cannot_be_pickled_is_reopened_by_its_url(tmp_path: Any) -> None:
    from agentlightning_sqlite import SqliteLightningStore

    (tmp_path / "dir with space").mkdir()
    store = SqliteLightningStore(str(tmp_path / "dir with space" / "run.db"), watchdog_interval=None)
    link, server = link_store(store)
    assert server is None and link.url is not None and "%20" in link.url
    reopened = link.open()
    assert isinstance(reopened, SqliteLightningStore) and reopened.path == store.path


# -- processes ---------------------------------------------------------------------------------------------------


def _ignore_sigterm_forever(ready: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready.set()
    while True:
        time.sleep(0.1)


def _exit_on_event(event: Any, ready: Any) -> None:
    ready.set()
    event.wait(30)


def test_shutdown_escalates_from_the_event_to_sigterm_to_sigkill() -> None:
    ctx = multiprocessing.get_context("spawn")
    event = MultiprocessingEvent(ctx=ctx)
    polite_ready, stubborn_ready = ctx.Event(), ctx.Event()
    polite = ctx.Process(target=_exit_on_event, args=(event, polite_ready))
    stubborn = ctx.Process(target=_ignore_sigterm_forever, args=(stubborn_ready,))
    polite.start()
    stubborn.start()
    # both are running their targets (a spawned child still importing when the event is set would be terminated)
    assert polite_ready.wait(60) and stubborn_ready.wait(60)
    started = time.monotonic()
    shutdown_processes([polite, stubborn], event, graceful_timeout=1.0, terminate_timeout=0.5)
    assert not polite.is_alive() and not stubborn.is_alive()
    assert polite.exitcode == 0 and stubborn.exitcode == -signal.SIGKILL
    assert time.monotonic() - started < 10


def test_http_client_store_travels_to_runner_processes_as_itself() -> None:
    from agentlightning_server.client import LightningStoreClient

    client = LightningStoreClient("http://127.0.0.1:1")
    link, server = link_store(client)
    assert server is None and link.store is client


def test_an_agent_that_cannot_reach_runner_processes_gets_a_clear_error() -> None:
    import agentlightning as agl
    from agentlightning.trainer import Trainer

    @agl.rollout
    def local_agent(task: Any, llm: Any) -> float:
        return 1.0

    trainer = Trainer(strategy="multiprocess", n_runners=2, progress=False)
    with pytest.raises(TypeError, match="Define the agent at module level"):
        trainer.fit(local_agent, [1])
    assert trainer.strategy.processes == []  # type: ignore[attr-defined]
