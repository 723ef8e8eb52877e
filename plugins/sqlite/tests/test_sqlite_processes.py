"""Several processes on one store file: atomic dequeues, unique sequence ids, no lock errors; and SIGKILL safety."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, List

import anyio
import pytest
import sqlite_workers
from agentlightning_sqlite import SqliteLightningStore

pytestmark = pytest.mark.slow

PROCESSES = 4
JOIN_SECONDS = 120


def _run_children(target: Any, args_per_child: List[tuple]) -> List[Any]:  # type: ignore[type-arg]
    """Start one spawned child per args tuple (each gets a result queue last), collect results, always reap."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, out)) for args in args_per_child]
    for proc in procs:
        proc.start()
    try:
        results = [out.get(timeout=JOIN_SECONDS) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return results


def test_concurrent_dequeuers_never_share_a_rollout(tmp_path: Path) -> None:
    path = str(tmp_path / "queue.db")

    async def setup() -> List[str]:
        store = SqliteLightningStore(path, watchdog_interval=None)
        from agentlightning.types.core import EnqueueRolloutRequest

        rollouts = await store.enqueue_many_rollouts([EnqueueRolloutRequest(input={"i": i}) for i in range(300)])
        await store.close()
        return [r.rollout_id for r in rollouts]

    ids = anyio.run(setup)
    # a tiny busy_timeout makes the processes collide constantly, so the retry path does the work
    start = multiprocessing.get_context("spawn").Barrier(PROCESSES)
    results = _run_children(sqlite_workers.dequeue_all, [(path, f"p{i}", 0.005, start) for i in range(PROCESSES)])
    errors = [error for _, _, error in results if error]
    assert not errors, errors[0]
    claimed = [item for _, items, _ in results for item in items]
    assert sorted(rollout_id for rollout_id, _, _ in claimed) == sorted(ids)  # each exactly once
    assert {seq for _, _, seq in claimed} == {1}
    assert sum(1 for _, items, _ in results if items) >= 2  # the work really was shared

    async def check() -> None:
        store = SqliteLightningStore(path, watchdog_interval=None)
        stats = await store.statistics()
        assert stats["total_attempts"] == 300
        assert len(await store.query_rollouts(status_in=["running"])) == 300
        await store.close()

    anyio.run(check)


def test_concurrent_span_writers_get_unique_sequence_ids(tmp_path: Path) -> None:
    path = str(tmp_path / "spans.db")

    async def setup() -> tuple:  # type: ignore[type-arg]
        store = SqliteLightningStore(path, watchdog_interval=None)
        attempted = await store.start_rollout({"shared": True})
        await store.close()
        return attempted.rollout_id, attempted.attempt.attempt_id

    rollout_id, attempt_id = anyio.run(setup)
    per_child = 60
    results = _run_children(
        sqlite_workers.write_spans,
        [(path, f"p{i}", rollout_id, attempt_id, per_child, 0.005) for i in range(PROCESSES)],
    )
    errors = [error for _, _, error in results if error]
    assert not errors, errors[0]
    used = [seq for _, seqs, _ in results for seq in seqs]
    assert len(used) == len(set(used)) == PROCESSES * per_child

    async def check() -> None:
        store = SqliteLightningStore(path, watchdog_interval=None)
        spans = await store.query_spans(rollout_id)
        assert sorted(s.sequence_id for s in spans) == sorted(used)
        assert await store.get_next_span_sequence_id(rollout_id, attempt_id) == max(used) + 1
        await store.close()

    anyio.run(check)


def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = str(tmp_path / "crash.db")
    script = Path(sqlite_workers.__file__)
    rng = random.Random(4)
    acked: dict = {"rollouts": set(), "spans": set(), "statuses": {}}  # type: ignore[type-arg]
    for round_ in range(5):
        child = subprocess.Popen(
            [sys.executable, str(script), path, f"r{round_}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        chunks: List[bytes] = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: child.stdout.read1(65536), b"")))  # type: ignore[union-attr]
        reader.start()
        try:
            deadline = time.monotonic() + 60
            while b"\nR " not in b"".join(chunks) and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)  # until the first write is acknowledged (start-up takes a while on a busy machine)
            time.sleep(rng.uniform(0.05, 1.0))  # then a random moment in the middle of the writes
            assert child.poll() is None, child.stderr.read().decode()  # type: ignore[union-attr]
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            reader.join(timeout=30)
            child.stderr.close()  # type: ignore[union-attr]
            child.stdout.close()  # type: ignore[union-attr]
        got = sqlite_workers.read_acks(b"".join(chunks).decode())
        assert got["rollouts"], "the child acknowledged no write before it was killed"
        acked["rollouts"] |= got["rollouts"]
        acked["spans"] |= got["spans"]
        acked["statuses"].update(got["statuses"])

        conn = sqlite3.connect(path)  # first look at the file as the crash left it: no store code involved
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()

        async def check() -> None:
            store = SqliteLightningStore(path, watchdog_interval=None)
            try:
                for rollout_id in acked["rollouts"]:
                    assert await store.get_rollout_by_id(rollout_id) is not None, f"lost rollout {rollout_id}"
                by_rollout: dict = {}  # type: ignore[type-arg]
                for rollout_id, span_id in acked["spans"]:
                    by_rollout.setdefault(rollout_id, set()).add(span_id)
                for rollout_id, span_ids in by_rollout.items():
                    stored = {s.span_id for s in await store.query_spans(rollout_id)}
                    assert span_ids <= stored, f"lost spans of {rollout_id}"
                for rollout_id, status in acked["statuses"].items():
                    rollout = await store.get_rollout_by_id(rollout_id)
                    assert rollout is not None and rollout.status == status
            finally:
                await store.close()

        anyio.run(check)
