"""Multi-machine roles of the multi-process strategy, resolved from arguments and upstream's AGL_* variables."""

from __future__ import annotations

import threading
from typing import Any, List

import pytest
from agentlightning.execution import ClientServerExecutionStrategy, MultiProcessExecutionStrategy
from agentlightning.execution.shared_memory import SharedMemoryExecutionStrategy


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AGL_CURRENT_ROLE", "AGL_SERVER_HOST", "AGL_SERVER_PORT", "AGL_MANAGED_STORE"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_without_environment() -> None:
    strategy = ClientServerExecutionStrategy()
    assert strategy.role == "both" and strategy.managed_store is True and strategy.main_process == "algorithm"
    assert strategy.server_host == "127.0.0.1" and strategy.server_port == 0  # any free port on one machine
    assert ClientServerExecutionStrategy("runner").server_port == 4747  # split roles meet on upstream's port


def test_runner_machines_may_name_several_store_servers() -> None:
    from agentlightning.execution.roles import _store_url

    assert _store_url(ClientServerExecutionStrategy("runner", "10.0.0.7", 4747)) == "http://10.0.0.7:4747"
    several = ClientServerExecutionStrategy("runner", "store-a, store-b:4800,::1", 4747)
    assert _store_url(several) == "http://store-a:4747,http://store-b:4800,http://[::1]:4747"


def test_environment_fills_what_arguments_leave_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGL_CURRENT_ROLE", "runner")
    monkeypatch.setenv("AGL_SERVER_HOST", "10.0.0.7")
    monkeypatch.setenv("AGL_SERVER_PORT", "10000")
    monkeypatch.setenv("AGL_MANAGED_STORE", " Off ")
    strategy = MultiProcessExecutionStrategy()
    assert (strategy.role, strategy.server_host, strategy.server_port, strategy.managed_store) == (
        "runner", "10.0.0.7", 10000, False,
    )  # fmt: skip
    explicit = ClientServerExecutionStrategy("algorithm", "127.0.0.2", 9000, managed_store=True)
    assert (explicit.role, explicit.server_host, explicit.server_port, explicit.managed_store) == (
        "algorithm", "127.0.0.2", 9000, True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AGL_CURRENT_ROLE", "trainer", "AGL_CURRENT_ROLE"),
        ("AGL_SERVER_PORT", "http", "AGL_SERVER_PORT must be an integer"),
        ("AGL_MANAGED_STORE", "maybe", "AGL_MANAGED_STORE must be one of"),
    ],
)
def test_bad_environment_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        ClientServerExecutionStrategy()


def test_main_process_runner_needs_both_roles_and_one_runner() -> None:
    with pytest.raises(ValueError, match="main_process='runner'"):
        ClientServerExecutionStrategy(main_process="runner", n_runners=2)
    with pytest.raises(ValueError, match="main_process='runner'"):
        ClientServerExecutionStrategy("algorithm", main_process="runner")
    with pytest.raises(ValueError, match="main_process must be"):
        ClientServerExecutionStrategy(main_process="server")


def test_shared_memory_reads_managed_store_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGL_MANAGED_STORE", "false")
    assert SharedMemoryExecutionStrategy().managed_store is False
    assert SharedMemoryExecutionStrategy(managed_store=True).managed_store is True
    monkeypatch.delenv("AGL_MANAGED_STORE")
    assert SharedMemoryExecutionStrategy().managed_store is True


def test_shared_memory_validates_main_thread_like_upstream() -> None:
    assert SharedMemoryExecutionStrategy().main_thread == "runner"
    assert SharedMemoryExecutionStrategy(n_runners=4).main_thread == "algorithm"
    with pytest.raises(ValueError, match="n_runners == 1"):
        SharedMemoryExecutionStrategy(n_runners=2, main_thread="runner")
    assert SharedMemoryExecutionStrategy(1, "algorithm", 15.0, 2.5).graceful_timeout == 2.5


def test_trainer_reads_the_role_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentlightning.algorithm import Baseline
    from agentlightning.trainer import Trainer

    monkeypatch.setenv("AGL_SERVER_PORT", "10000")
    monkeypatch.setenv("AGL_CURRENT_ROLE", "algorithm")
    monkeypatch.setenv("AGL_MANAGED_STORE", "0")
    for spec in ("cs", None):  # a role in the environment makes the client-server strategy the default
        trainer = Trainer(algorithm=Baseline(), strategy=spec, progress=False)
        assert isinstance(trainer.strategy, ClientServerExecutionStrategy)
        assert (trainer.strategy.server_port, trainer.strategy.role, trainer.strategy.managed_store) == (
            10000, "algorithm", False,
        )  # fmt: skip


class Calls:
    def __init__(self) -> None:
        self.algorithm: List[str] = []
        self.runner: List[str] = []

    async def run_algorithm(self, store: Any, event: Any) -> None:
        self.algorithm.append(threading.current_thread().name)
        await store.enqueue_rollout({"x": 1})

    async def __call__(self, store: Any, worker_id: int, event: Any) -> None:
        self.runner.append(threading.current_thread().name)
        claimed = None
        while claimed is None and not event.is_set():
            claimed = await store.dequeue_rollout(worker_id="w")


def memory_store() -> Any:
    from agentlightning_memory import InMemoryLightningStore

    return InMemoryLightningStore(watchdog_interval=None)


def test_algorithm_role_unmanaged_runs_only_the_algorithm_on_the_given_store() -> None:
    calls, store = Calls(), memory_store()
    ClientServerExecutionStrategy("algorithm", managed_store=False).execute(calls.run_algorithm, calls, store)
    assert calls.algorithm == ["MainThread"] and calls.runner == []


def test_runner_role_unmanaged_runs_one_runner_on_the_given_store() -> None:
    import anyio

    calls, store = Calls(), memory_store()
    anyio.run(store.enqueue_rollout, {"x": 1})
    ClientServerExecutionStrategy("runner", managed_store=False).execute(calls.run_algorithm, calls, store)
    assert calls.runner == ["MainThread"] and calls.algorithm == []
    assert anyio.run(store.query_rollouts)[0].status == "preparing"  # claimed by that runner


def test_runner_role_unmanaged_with_processes_needs_a_shareable_store() -> None:
    calls = Calls()
    strategy = ClientServerExecutionStrategy("runner", n_runners=2, managed_store=False)
    with pytest.raises(ValueError, match="zero_copy"):
        strategy.execute(calls.run_algorithm, calls, memory_store())


def test_main_process_runner_keeps_the_runner_on_the_main_thread() -> None:
    calls = Calls()
    ClientServerExecutionStrategy(main_process="runner").execute(calls.run_algorithm, calls, memory_store())
    assert calls.algorithm and calls.algorithm != ["MainThread"]
    assert calls.runner == ["MainThread"]


def test_in_process_strategy_accepts_upstreams_shared_memory_arguments() -> None:
    from agentlightning.execution import InProcessExecutionStrategy

    with pytest.warns(DeprecationWarning, match="graceful_delay"):
        strategy = InProcessExecutionStrategy(
            n_runners=2, graceful_delay=0.5, join_timeout=2.0, main_thread="algorithm", managed_store=False
        )
    assert (strategy.graceful_timeout, strategy.join_timeout) == (0.5, 2.0)
    assert (strategy.main_thread, strategy.managed_store) == ("algorithm", False)
    with pytest.raises(TypeError, match="unexpected arguments: poll_every"):
        InProcessExecutionStrategy(poll_every=1)


def test_a_runner_machine_counts_a_server_seen_by_its_runners_calls() -> None:
    """A run can begin and end between two probes of the watch: the runners' own answered calls count as seen, so the
    watch goes on to notice that the server has gone instead of waiting for it for ever."""
    import anyio
    from agentlightning.execution import roles

    class GoneServerClient:
        answered = False
        probes = 0

        async def get_latest_resources(self) -> None:
            self.probes += 1
            if self.probes == 2:
                self.answered = True  # meanwhile a runner's call got its answer, and the server went away
            raise ConnectionError("refused")

    store = GoneServerClient()
    event = threading.Event()

    async def watch() -> None:
        with anyio.fail_after(30):
            await roles._watch_until_gone(store, "http://127.0.0.1:9", event)

    anyio.run(watch)
    assert event.is_set() and store.probes == 3
