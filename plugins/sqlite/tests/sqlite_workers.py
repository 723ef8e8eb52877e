"""Child-process bodies of the multi-process and crash tests (importable by spawned children, runnable as a script).

As a script: ``python sqlite_workers.py DB_PATH PREFIX`` writes to the store forever and prints one line per write
*after* the store call returned (so after its commit): ``R <rollout_id>``, ``S <rollout_id> <span_id>``,
``U <rollout_id> <status>``. The crash test kills it at random moments.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, Dict, List

import anyio
import anyio.to_thread


def dequeue_all(path: str, worker: str, busy_timeout: float, start: Any, out: Any) -> None:
    """Claim rollouts until the queue is empty; report (rollout_id, attempt_id, sequence_id) of each, or the error.

    ``start`` is a barrier shared by the workers: each opens the store, then all begin claiming together.
    """
    from agentlightning_sqlite import SqliteLightningStore

    async def main() -> List[Any]:
        store = SqliteLightningStore(path, busy_timeout=busy_timeout, watchdog_interval=None)
        await anyio.to_thread.run_sync(start.wait, 60)
        claimed: List[Any] = []
        try:
            empty = 0
            while empty < 3:
                got = await store.dequeue_many_rollouts(limit=2, worker_id=worker)
                if not got:
                    empty += 1
                    await anyio.sleep(0.01)
                    continue
                empty = 0
                for a in got:
                    claimed.append((a.rollout_id, a.attempt.attempt_id, a.attempt.sequence_id))
                    await store.update_attempt(a.rollout_id, a.attempt.attempt_id, status="running")
                # a little work per claim, as a runner would do, so one process cannot drain the queue alone
                await anyio.sleep(0.003)
        finally:
            await store.close()
        return claimed

    try:
        out.put((worker, anyio.run(main), None))
    except BaseException:  # noqa: BLE001 - the parent test reports the worker's traceback
        out.put((worker, [], traceback.format_exc()))


def write_spans(
    path: str, worker: str, rollout_id: str, attempt_id: str, count: int, busy_timeout: float, out: Any
) -> None:
    """Allocate sequence ids and add spans to one shared rollout; report the ids used, or the error."""
    from agentlightning_sqlite import SqliteLightningStore
    from sqlite_records import make_span

    async def main() -> List[int]:
        store = SqliteLightningStore(path, busy_timeout=busy_timeout, watchdog_interval=None)
        used: List[int] = []
        try:
            for i in range(count):
                if i % 2:
                    seq = await store.get_next_span_sequence_id(rollout_id, attempt_id)
                    span = make_span(rollout_id, attempt_id, seq, span_id=f"{worker}-{i}")
                    assert await store.add_span(span) is not None
                    used.append(seq)
                else:
                    (seq,) = await store.get_many_span_sequence_ids([(rollout_id, attempt_id)])
                    used.append(seq)
                    await store.add_many_spans([make_span(rollout_id, attempt_id, seq, span_id=f"{worker}-{i}")])
        finally:
            await store.close()
        return used

    try:
        out.put((worker, anyio.run(main), None))
    except BaseException:  # noqa: BLE001 - the parent test reports the worker's traceback
        out.put((worker, [], traceback.format_exc()))


def write_forever(path: str, prefix: str, writers: int = 4) -> None:
    """The crash test's victim: ``writers`` concurrent tasks enqueue, claim, add spans (in one call, or one call per
    span, so that writes of different rollouts share commits) and finish rollouts, acknowledging each committed
    write."""
    from agentlightning_sqlite import SqliteLightningStore
    from sqlite_records import make_span

    def ack(line: str) -> None:
        os.write(1, (line + "\n").encode())  # unbuffered: the line leaves the process as soon as the call returned

    async def loop(store: Any, worker: str) -> None:
        n = 0
        while True:
            n += 1
            rollout = await store.enqueue_rollout({"prefix": worker, "n": n})
            ack(f"R {rollout.rollout_id}")
            claimed = await store.dequeue_rollout(worker_id=worker)
            if claimed is None:
                continue
            spans = [
                make_span(claimed.rollout_id, claimed.attempt.attempt_id, i + 1, span_id=f"{worker}-{n}-{i}")
                for i in range(5)
            ]
            stored = await store.add_many_spans(spans) if n % 2 else [await store.add_span(span) for span in spans]
            for span in stored:
                ack(f"S {span.rollout_id} {span.span_id}")
            status = "succeeded" if n % 2 else "failed"
            await store.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status=status)
            ack(f"U {claimed.rollout_id} {status}")

    async def main() -> None:
        store = SqliteLightningStore(path, watchdog_interval=None)
        async with anyio.create_task_group() as tg:
            for i in range(writers):
                tg.start_soon(loop, store, f"{prefix}-{i}")

    ack("READY")
    anyio.run(main)


def read_acks(text: str) -> Dict[str, Any]:
    """The writes a victim acknowledged: complete lines only (a kill may cut the last one)."""
    rollouts: set = set()  # type: ignore[type-arg]
    spans: set = set()  # type: ignore[type-arg]
    statuses: Dict[str, str] = {}
    lines = text.split("\n")
    for line in lines[:-1]:  # the part after the last newline is incomplete
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "R":
            rollouts.add(parts[1])
        elif parts[0] == "S":
            spans.add((parts[1], parts[2]))
        elif parts[0] == "U":
            statuses[parts[1]] = parts[2]
    return {"rollouts": rollouts, "spans": spans, "statuses": statuses}


if __name__ == "__main__":
    write_forever(sys.argv[1], sys.argv[2])
