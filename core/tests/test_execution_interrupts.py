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
