"""A real run on SQLite that a test can hurt: a store server process, a trainer process and its runner processes.

Every process here is started by the harness and killed only by its pid; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, TypeVar

import anyio
import attrs

TRAINER = Path(__file__).with_name("fault_trainer.py")
T = TypeVar("T")


@attrs.define
class Fault:
    kind: str  # "runner", "store", "trainer"
    at: float  # time.monotonic() when injected
    done_before: int  # rollouts succeeded when injected
    at_wall: float = attrs.field(factory=time.time)  # time.time() when injected (the store's clock)
    gap: float = 0.0  # seconds the store server stayed down
    recovered_after: Optional[float] = None  # seconds until the next rollout succeeded


class FaultRun:
    """``sqlite:///<tmp>/run.db`` served by a store server process on a fixed port, a trainer process on it."""

    def __init__(self, tmp: Path, n_tasks: int, *, unavailable_seconds: Optional[float] = 60.0) -> None:
        from agentlightning_server.serve import free_port

        self.tmp = tmp
        self.n_tasks = n_tasks
        self.url = f"sqlite:///{tmp / 'run.db'}"
        self.port = free_port()
        self.unavailable_seconds = unavailable_seconds
        self.server: Any = None
        self.trainer: Optional[subprocess.Popen[bytes]] = None
        self.trainer_starts = 0
        self.faults: List[Fault] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- processes ---------------------------------------------------------------------------------------------------

    def start_server(self) -> None:
        from agentlightning_server import LightningStoreServer

        self.server = LightningStoreServer(self.url, port=self.port, launch_mode="subprocess").start()

    def kill_server(self) -> None:
        process = self.server._process
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        self.server.stop()

    def start_trainer(self) -> None:
        env = dict(os.environ)
        if self.unavailable_seconds is not None:
            env["AGL_STORE_UNAVAILABLE_SECONDS"] = str(self.unavailable_seconds)
        else:
            env.pop("AGL_STORE_UNAVAILABLE_SECONDS", None)
        self.trainer_starts += 1
        log = open(self.tmp / f"trainer-{self.trainer_starts}.log", "wb")  # noqa: SIM115 - closed with the process
        try:
            self.trainer = subprocess.Popen(
                [sys.executable, str(TRAINER), self.endpoint, str(self.n_tasks)], stdout=log, stderr=subprocess.STDOUT,
                env=env,
            )  # fmt: skip
        finally:
            log.close()

    def kill_trainer(self) -> None:
        assert self.trainer is not None
        runners = self.runner_pids()
        self.trainer.kill()
        self.trainer.wait(10)
        _wait_gone(runners, 15.0)  # they exit by themselves once their parent is gone

    def runner_pids(self) -> List[int]:
        import psutil

        if self.trainer is None or self.trainer.poll() is not None:
            return []
        try:
            children = psutil.Process(self.trainer.pid).children()
        except psutil.NoSuchProcess:
            return []
        pids = []
        for child in children:
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    pids.append(child.pid)
            except psutil.Error:
                continue
        return pids

    def kill_runner(self, pick: int) -> bool:
        pids = self.runner_pids()
        if not pids:
            return False
        os.kill(pids[pick % len(pids)], signal.SIGKILL)
        return True

    def trainer_log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("trainer-*.log")))

    def close(self) -> None:
        if self.trainer is not None and self.trainer.poll() is None:
            runners = self.runner_pids()
            self.trainer.kill()
            self.trainer.wait(10)
            _wait_gone(runners, 15.0)
        if self.server is not None:
            self.server.stop()

    # -- observing ---------------------------------------------------------------------------------------------------

    def _ask(self, question: Callable[[Any], Awaitable[T]]) -> Optional[T]:
        """``question(client)`` answered by the store server once, or None while it is away."""
        from agentlightning_server import LightningStoreClient

        async def ask() -> T:
            client = LightningStoreClient(self.endpoint, retry_delays=(), unavailable_seconds=0)
            try:
                return await question(client)
            finally:
                await client.close()

        try:
            return anyio.run(ask)
        except Exception:  # noqa: BLE001 - the server is down or restarting
            return None

    def succeeded(self) -> Optional[int]:
        """Rollouts succeeded so far, or None while the store server is away."""

        async def count(client: Any) -> int:
            return int((await client.query_rollouts(status_in=["succeeded"], limit=0)).total)

        return self._ask(count)

    def new_success(self, since: float) -> Optional[bool]:
        """Whether a rollout succeeded with an attempt started after ``since`` (None while the server is away)."""

        async def look(client: Any) -> bool:
            for rollout in await client.query_rollouts(status_in=["succeeded"]):
                attempt = getattr(rollout, "attempt", None)
                if attempt is not None and attempt.start_time >= since:
                    return True
            return False

        return self._ask(look)

    def wait_recovered(self, fault: Fault, deadline: float) -> None:
        """Poll until work started after ``fault`` succeeded (or the run finished); sets its recovery time."""
        while not self.new_success(fault.at_wall):
            if self.trainer is not None and self.trainer.poll() is not None:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no recovery from {fault} before the deadline\n{self.trainer_log()[-4000:]}")
            time.sleep(0.1)
        fault.recovered_after = time.monotonic() - fault.at

    def wait_for(self, done: int, deadline: float) -> int:
        """Poll until ``done`` rollouts succeeded (or the trainer exited); the count then."""
        while True:
            current = self.succeeded()
            if current is not None and current >= done:
                return current
            if self.trainer is not None and self.trainer.poll() is not None:
                return current or 0
            if time.monotonic() > deadline:
                raise TimeoutError(f"no progress to {done} rollouts before the deadline\n{self.trainer_log()[-4000:]}")
            time.sleep(0.1)

    def audit(self) -> Dict[str, Any]:
        """Every task accounted for exactly once, with its spans: raises AssertionError otherwise."""
        from agentlightning_server import LightningStoreClient

        async def collect() -> Dict[str, Any]:
            client = LightningStoreClient(self.endpoint)
            try:
                rollouts = list(await client.query_rollouts())
                by_task: Dict[int, List[Any]] = {}
                for rollout in rollouts:
                    by_task.setdefault(int(rollout.input["n"]), []).append(rollout)
                duplicates = {n: [r.rollout_id for r in rs] for n, rs in by_task.items() if len(rs) > 1}
                assert not duplicates, f"tasks with more than one rollout: {duplicates}"
                assert sorted(by_task) == list(range(self.n_tasks)), "tasks missing from the store"
                attempts = 0
                for n, (rollout,) in sorted(by_task.items()):
                    assert rollout.status == "succeeded", (n, rollout.status)
                    tried = list(await client.query_attempts(rollout.rollout_id))
                    attempts += len(tried)
                    assert tried[-1].status == "succeeded" and all(a.status != "running" for a in tried), tried
                    spans = list(await client.query_spans(rollout.rollout_id, "latest"))
                    messages = [s for s in spans if s.name == "agentlightning.message"]
                    assert len(messages) == 1, (n, [s.name for s in spans])
                    import agentlightning as agl

                    assert agl.find_final_reward(spans) == float(n % 7), (n, [s.name for s in spans])
                return {"rollouts": len(rollouts), "attempts": attempts}
            finally:
                await client.close()

        return anyio.run(collect)


def _wait_gone(pids: List[int], timeout: float) -> None:
    """Wait until each process exited (a zombie counts: orphans are reaped by whoever adopts them, maybe never in a
    container); SIGKILL those still running at the deadline."""
    import psutil

    deadline = time.monotonic() + timeout
    for pid in pids:
        while True:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)


def fault_times(faults: List[Fault]) -> Tuple[float, float]:
    """Mean and worst seconds to recover over the faults that recovered."""
    times = [f.recovered_after for f in faults if f.recovered_after is not None]
    return (sum(times) / len(times), max(times)) if times else (0.0, 0.0)
