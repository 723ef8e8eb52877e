"""Ctrl-C while an algorithm runs: always a clean stop and then KeyboardInterrupt (run_interruptibly)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, List

import anyio
import anyio.lowlevel
import pytest
from agentlightning.execution.interrupts import run_interruptibly

BACKENDS = ["asyncio", "trio"]


def _sigint_soon(delay: float = 0.2) -> threading.Timer:
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_result_and_the_errors_of_the_function_come_out_as_themselves(backend: str) -> None:
    async def answer(x: int) -> int:
        await anyio.lowlevel.checkpoint()
        return x * 2

    async def broken() -> None:
        await anyio.lowlevel.checkpoint()
        raise ValueError("algorithm failed")

    assert run_interruptibly(answer, 21, backend=backend) == 42
    with pytest.raises(ValueError, match="algorithm failed"):  # not an exception group
        run_interruptibly(broken, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_cancels_the_function_and_raises_keyboard_interrupt_after_it_unwound(backend: str) -> None:
    seen: List[str] = []

    async def algorithm() -> None:
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)  # cleanup that awaits still runs
            seen.append("cleaned up")

    timer = _sigint_soon()
    with pytest.raises(KeyboardInterrupt):
        run_interruptibly(algorithm, backend=backend)
    timer.join()
    assert seen == ["cancelled", "cleaned up"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_is_not_lost_when_the_function_absorbs_its_cancellation(backend: str) -> None:
    # What made a Ctrl-C look like a finished run: the cancellation ends up swallowed and the function returns.
    async def algorithm() -> str:
        with anyio.move_on_after(30):
            await anyio.sleep(30)
        return "returned normally"

    timer = _sigint_soon()
    with pytest.raises(KeyboardInterrupt):
        run_interruptibly(algorithm, backend=backend)
    timer.join()


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_error_while_unwinding_from_ctrl_c_still_reads_as_keyboard_interrupt(backend: str) -> None:
    async def algorithm() -> None:
        try:
            await anyio.sleep(30)
        finally:
            raise RuntimeError("cleanup failed")

    timer = _sigint_soon()
    with pytest.raises(KeyboardInterrupt) as info:
        run_interruptibly(algorithm, backend=backend)
    timer.join()
    assert isinstance(info.value.__cause__, BaseException)


def test_off_the_main_thread_it_is_a_plain_run() -> None:
    out: List[Any] = []

    async def answer() -> str:
        return "ok"

    thread = threading.Thread(target=lambda: out.append(run_interruptibly(answer, backend="asyncio")))
    thread.start()
    thread.join(10)
    assert out == ["ok"]


# ------------------------------------------------------------------ upstream-named strategies: Ctrl-C is a stop request


def _memory_store() -> Any:
    from agentlightning_memory import InMemoryLightningStore

    return InMemoryLightningStore(watchdog_interval=None)


async def _interrupting_algorithm(store: Any, event: Any) -> None:
    await anyio.sleep(0.05)
    raise KeyboardInterrupt


def _runner_until_stopped(finished: List[int]) -> Any:
    async def runner(store: Any, worker_id: int, event: Any) -> None:
        while not event.is_set():  # noqa: ASYNC110 - a thread event: polled, as runners do
            await anyio.sleep(0.01)
        finished.append(worker_id)

    return runner


def test_shared_memory_strategy_returns_after_an_interrupting_algorithm_and_runners_stop_cooperatively(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from agentlightning.execution import SharedMemoryExecutionStrategy

    finished: List[int] = []
    strategy = SharedMemoryExecutionStrategy(n_runners=2, main_thread="algorithm", graceful_delay=5.0)
    strategy.execute(_interrupting_algorithm, _runner_until_stopped(finished), _memory_store())
    assert sorted(finished) == [0, 1]  # they saw the stop event, not a cancellation
    assert "KeyboardInterrupt received on main thread" in caplog.text


def test_shared_memory_strategy_with_the_runner_on_the_main_thread_lets_the_algorithm_finish() -> None:
    from agentlightning.execution import SharedMemoryExecutionStrategy

    finished: List[str] = []

    async def algorithm(store: Any, event: Any) -> None:
        while not event.is_set():  # noqa: ASYNC110 - a thread event: polled, as algorithms do
            await anyio.sleep(0.01)
        finished.append("algorithm")

    async def runner(store: Any, worker_id: int, event: Any) -> None:
        raise KeyboardInterrupt

    SharedMemoryExecutionStrategy(n_runners=1, main_thread="runner").execute(algorithm, runner, _memory_store())
    assert finished == ["algorithm"]


def test_shared_memory_strategy_still_raises_other_errors() -> None:
    from agentlightning.execution import SharedMemoryExecutionStrategy

    async def broken(store: Any, event: Any) -> None:
        raise ValueError("algorithm failed")

    with pytest.raises(ValueError, match="algorithm failed"):
        SharedMemoryExecutionStrategy(n_runners=1).execute(broken, _runner_until_stopped([]), _memory_store())


def test_our_in_process_strategy_keeps_raising_keyboard_interrupt() -> None:
    from agentlightning.execution import InProcessExecutionStrategy

    with pytest.raises(KeyboardInterrupt):
        InProcessExecutionStrategy(n_runners=1).execute(
            _interrupting_algorithm, _runner_until_stopped([]), _memory_store()
        )


def test_client_server_strategy_returns_after_an_interrupting_algorithm_or_runner() -> None:
    from agentlightning.execution import ClientServerExecutionStrategy

    algorithm_role = ClientServerExecutionStrategy("algorithm", managed_store=False)
    algorithm_role.execute(_interrupting_algorithm, _runner_until_stopped([]), _memory_store())

    async def interrupting_runner(store: Any, worker_id: int, event: Any) -> None:
        raise KeyboardInterrupt

    async def idle_algorithm(store: Any, event: Any) -> None:
        await anyio.lowlevel.checkpoint()

    runner_role = ClientServerExecutionStrategy("runner", managed_store=False)
    runner_role.execute(idle_algorithm, interrupting_runner, _memory_store())
