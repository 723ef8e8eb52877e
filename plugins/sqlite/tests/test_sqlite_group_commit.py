"""Group commit: concurrent writes that cannot run inline share one transaction, each in its own savepoint.

``inline_transactions=False`` (or ``synchronous="FULL"``) sends every write of these tests down the grouped path.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from pathlib import Path
from typing import Any, Dict, List

import anyio
import anyio.lowlevel
import pytest
from agentlightning.store.errors import NotFoundError, StoreClosedError
from agentlightning.types.core import Worker
from agentlightning_sqlite import SqliteBackend, SqliteLightningStore
from agentlightning_sqlite.backend import LONE_WRITES_BETWEEN_BATCHES
from sqlite_records import make_attempt, make_rollout, make_span

pytestmark = pytest.mark.anyio

WRITES = 8


def _workers_on_disk(path: Path) -> List[str]:
    """What a separate connection (as another process would) reads from the file right now."""
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT worker_id FROM workers ORDER BY pk")]
    finally:
        conn.close()


async def _outcome(
    outcomes: Dict[str, Any], backend: SqliteBackend, name: str, fn: Any, *, catch: type[BaseException] = Exception
) -> None:
    """Runs ``fn`` as a write on ``backend``; its result, or the ``catch`` it raised, becomes ``outcomes[name]``."""
    try:
        outcomes[name] = await backend.run(fn, write=True)
    except catch as exc:  # the outcome under test
        outcomes[name] = exc


def _put(worker_id: str, log: List[str]) -> Any:
    def fn(tx: Any) -> str:
        log.append(worker_id)
        tx.put_worker(Worker(worker_id=worker_id))
        return worker_id

    return fn


async def test_concurrent_writes_share_commits_in_call_order_and_are_on_disk_on_return(db_path: Path) -> None:
    backend = SqliteBackend(db_path, inline_transactions=False)
    try:
        called: List[str] = []
        ran: List[str] = []
        seen_on_return: List[bool] = []
        commits_before = backend.change_token()[1]

        async def write(i: int) -> None:
            worker_id = f"w{i}"
            called.append(worker_id)  # run() queues the write before its first await
            assert await backend.run(_put(worker_id, ran), write=True) == worker_id
            seen_on_return.append(worker_id in _workers_on_disk(db_path))

        async with anyio.create_task_group() as tg:
            for i in range(WRITES):
                tg.start_soon(write, i)

        assert ran == called  # one batch runs its writes in the order they were issued
        assert seen_on_return == [True] * WRITES  # committed before the call returned
        assert _workers_on_disk(db_path) == called
        assert backend.change_token()[1] - commits_before < WRITES  # some writes shared a commit
    finally:
        backend.close()


async def test_a_failing_write_is_rolled_back_alone(db_path: Path) -> None:
    backend = SqliteBackend(db_path, inline_transactions=False)
    try:
        outcomes: dict[str, Any] = {}

        def failing(tx: Any) -> None:
            tx.put_worker(Worker(worker_id="bad"))  # written, then undone by its savepoint
            raise ValueError("boom")

        write = functools.partial(_outcome, outcomes, backend)

        async with anyio.create_task_group() as tg:
            tg.start_soon(write, "a", _put("a", []))
            tg.start_soon(write, "bad", failing)
            tg.start_soon(write, "b", _put("b", []))
            tg.start_soon(write, "insert-twice", lambda tx: tx.insert_rollouts([make_rollout("r"), make_rollout("r")]))
            tg.start_soon(write, "c", _put("c", []))

        assert outcomes["a"] == "a" and outcomes["b"] == "b" and outcomes["c"] == "c"
        assert isinstance(outcomes["bad"], ValueError) and str(outcomes["bad"]) == "boom"
        assert isinstance(outcomes["insert-twice"], ValueError)
        assert sorted(_workers_on_disk(db_path)) == ["a", "b", "c"]
        assert backend.run_sync(lambda tx: tx.count_rollouts(), write=False) == 0
    finally:
        backend.close()


class Abort(BaseException):
    """Not an ``Exception``: no savepoint contains it, so it aborts the whole batch."""


async def test_what_no_savepoint_contains_fails_the_whole_batch(db_path: Path) -> None:
    backend = SqliteBackend(db_path, inline_transactions=False)
    try:
        errors: List[BaseException] = []

        def abort(tx: Any) -> None:
            tx.put_worker(Worker(worker_id="x"))
            raise Abort()

        async def write(fn: Any) -> None:
            try:
                await backend.run(fn, write=True)
            except Abort as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(write, _put("a", []))
            tg.start_soon(write, abort)
            tg.start_soon(write, _put("b", []))
        assert len(errors) == 3
        assert _workers_on_disk(db_path) == []
        assert await backend.run(_put("c", []), write=True) == "c"  # the next batch is unaffected
    finally:
        backend.close()


async def test_closed_backend_refuses_batched_writes(db_path: Path) -> None:
    backend = SqliteBackend(db_path, inline_transactions=False)
    backend.close()
    with pytest.raises(StoreClosedError):
        await backend.run(_put("w", []), write=True)


async def test_cancelled_caller_still_gets_its_write_committed(db_path: Path) -> None:
    backend = SqliteBackend(db_path, inline_transactions=False)
    try:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await backend.run(_put("w", []), write=True)  # shielded: runs to completion, then the cancel lands
            await anyio.lowlevel.checkpoint()
        assert scope.cancelled_caught
        assert _workers_on_disk(db_path) == ["w"]
    finally:
        backend.close()


@pytest.mark.parametrize("options", [{"synchronous": "FULL"}, {"watchdog_interval": None}], ids=["full", "normal"])
async def test_concurrent_add_span_through_the_store(tmp_path: Path, options: dict[str, Any]) -> None:
    """Many workers adding spans at once, one of them to an unknown rollout: only that call fails."""
    path = tmp_path / "spans.db"
    store = SqliteLightningStore(path, **options)
    try:
        store.backend.inline_transactions = False  # every write batched, on both synchronous modes
        await store.backend.run(
            lambda tx: (tx.insert_rollouts([make_rollout("r1")]), tx.insert_attempt(make_attempt("r1", 1))),
            write=True,
        )
        attempt_id = make_attempt("r1", 1).attempt_id
        results: dict[int, Any] = {}

        async def add(i: int) -> None:
            rollout_id = "missing" if i == 3 else "r1"
            try:
                results[i] = await store.add_span(make_span(rollout_id, attempt_id, i + 1))
            except NotFoundError as exc:
                results[i] = exc

        async with anyio.create_task_group() as tg:
            for i in range(WRITES):
                tg.start_soon(add, i)

        assert isinstance(results.pop(3), NotFoundError)
        assert all(span is not None and span.sequence_id == i + 1 for i, span in results.items())
        conn = sqlite3.connect(path)
        try:
            stored = [row[0] for row in conn.execute("SELECT sequence_id FROM spans ORDER BY sequence_id")]
        finally:
            conn.close()
        assert stored == sorted(i + 1 for i in results)
        attempt = await store.get_latest_attempt("r1")
        assert attempt is not None and attempt.status == "running" and attempt.last_heartbeat_time is not None
        assert (await store.get_rollout_by_id("r1")).status == "running"  # type: ignore[union-attr]
        assert await store.get_next_span_sequence_id("r1", attempt_id) == WRITES + 1
    finally:
        await store.close()


# -- inline writes on asyncio: one batch per event-loop turn --------------------------------------------------------


@pytest.fixture
def asyncio_only(anyio_backend: Any) -> None:
    name = anyio_backend if isinstance(anyio_backend, str) else anyio_backend[0]
    if name != "asyncio":
        pytest.skip("inline writes on trio commit one by one")


async def test_inline_writes_of_one_turn_share_one_commit_and_are_on_disk_on_return(
    db_path: Path, asyncio_only: None
) -> None:
    backend = SqliteBackend(db_path)
    try:
        called: List[str] = []
        ran: List[str] = []
        seen_on_return: List[bool] = []
        commits_before = backend.change_token()[1]

        async def write(i: int) -> None:
            worker_id = f"w{i}"
            called.append(worker_id)
            assert await backend.run(_put(worker_id, ran), write=True) == worker_id
            seen_on_return.append(worker_id in _workers_on_disk(db_path))

        async with anyio.create_task_group() as tg:
            for i in range(WRITES):
                tg.start_soon(write, i)

        assert ran == called
        assert seen_on_return == [True] * WRITES  # committed before the call returned
        assert backend.change_token()[1] - commits_before == 1  # the tasks wrote in one turn: one commit
    finally:
        backend.close()


def _statements(backend: SqliteBackend, log: List[str]) -> None:
    """Log the first word(s) of every statement this thread's inline connection runs from now on."""
    conn = backend._connection(inline=True)
    conn.set_trace_callback(lambda sql: log.append(" ".join(sql.split()[:2])))


async def test_a_batch_without_failures_runs_without_savepoints(db_path: Path, asyncio_only: None) -> None:
    backend = SqliteBackend(db_path)
    try:
        statements: List[str] = []
        _statements(backend, statements)
        async with anyio.create_task_group() as tg:
            for i in range(WRITES):
                tg.start_soon(functools.partial(backend.run, _put(f"w{i}", []), write=True))
        assert not [sql for sql in statements if sql.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))]
        assert statements.count("COMMIT") == 1
        assert _workers_on_disk(db_path) == [f"w{i}" for i in range(WRITES)]

        statements.clear()
        assert await backend.run(_put("alone", []), write=True) == "alone"  # a lone write: no savepoint at all
        assert not [sql for sql in statements if "SAVEPOINT" in sql or "RELEASE" in sql]
    finally:
        backend.close()


async def test_writes_run_again_after_a_failure_in_their_batch_are_stored_once(
    db_path: Path, asyncio_only: None
) -> None:
    backend = SqliteBackend(db_path)
    try:
        outcomes: dict[str, Any] = {}
        calls: List[str] = []

        def insert(rollout_id: str) -> Any:
            def fn(tx: Any) -> str:
                calls.append(rollout_id)
                tx.insert_rollouts([make_rollout(rollout_id)])  # refused if it were stored twice
                return rollout_id

            return fn

        def failing(tx: Any) -> None:
            calls.append("bad")
            tx.put_worker(Worker(worker_id="bad"))
            raise ValueError("boom")

        write = functools.partial(_outcome, outcomes, backend)

        async with anyio.create_task_group() as tg:
            tg.start_soon(write, "r1", insert("r1"))
            tg.start_soon(write, "r2", insert("r2"))
            tg.start_soon(write, "bad", failing)
            tg.start_soon(write, "r3", insert("r3"))

        assert (outcomes["r1"], outcomes["r2"], outcomes["r3"]) == ("r1", "r2", "r3")
        assert isinstance(outcomes["bad"], ValueError)
        # the batch ran up to the failure, was rolled back, then ran again with a savepoint per write
        assert calls == ["r1", "r2", "bad", "r1", "r2", "bad", "r3"]
        assert backend.run_sync(lambda tx: tx.count_rollouts(), write=False) == 3
        assert _workers_on_disk(db_path) == []
        # the record cache holds what was committed, not the first run's rolled-back reads
        assert await backend.run(lambda tx: tx.get_rollout("r2").rollout_id, write=True) == "r2"
        assert await backend.run(lambda tx: tx.get_rollout("r4"), write=True) is None
    finally:
        backend.close()


async def test_a_batch_whose_lock_is_taken_before_it_runs_again_is_retried_as_a_whole(
    db_path: Path, asyncio_only: None
) -> None:
    """Between the rollback of a failed batch and its second run, another connection takes the write lock: the batch
    is handed to a worker thread, which waits for the lock and runs it again; each write still commits once."""
    backend = SqliteBackend(db_path)
    other = sqlite3.connect(db_path, isolation_level=None, timeout=0, check_same_thread=False)
    try:
        outcomes: dict[str, Any] = {}
        begins: List[str] = []
        taken: List[bool] = []

        def take_the_lock(sql: str) -> None:  # runs as a statement starts, before it takes any lock
            if sql.startswith("BEGIN IMMEDIATE"):
                begins.append(sql)
                if len(begins) == 2:  # the failed batch begins again: another connection is first
                    other.execute("BEGIN IMMEDIATE")
                    taken.append(True)
                    threading.Timer(0.2, other.execute, ("ROLLBACK",)).start()

        backend._connection(inline=True).set_trace_callback(take_the_lock)

        def insert(rollout_id: str) -> Any:
            return lambda tx: tx.insert_rollouts([make_rollout(rollout_id)]) or rollout_id

        def failing(tx: Any) -> None:
            raise ValueError("boom")

        write = functools.partial(_outcome, outcomes, backend)

        async with anyio.create_task_group() as tg:
            tg.start_soon(write, "r1", insert("r1"))
            tg.start_soon(write, "bad", failing)
            tg.start_soon(write, "r2", insert("r2"))

        assert (outcomes["r1"], outcomes["r2"]) == ("r1", "r2") and isinstance(outcomes["bad"], ValueError)
        assert taken == [True] and len(begins) == 2  # the second run happened on a worker thread's connection
        assert backend.run_sync(lambda tx: tx.count_rollouts(), write=False) == 2
    finally:
        other.close()
        backend.close()


async def test_a_lone_writer_soon_commits_without_waiting_for_the_turn_and_batches_again_with_company(
    db_path: Path, asyncio_only: None
) -> None:
    backend = SqliteBackend(db_path)
    try:
        turns = 0

        async def ticker() -> None:
            nonlocal turns
            while True:
                turns += 1
                await anyio.lowlevel.checkpoint()

        waited: List[bool] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            await anyio.lowlevel.checkpoint()
            for i in range(40):
                before = turns
                await backend.run(_put(f"lone{i}", []), write=True)
                waited.append(turns != before)
            tg.cancel_scope.cancel()
        assert waited[0] and not any(waited[10:])  # batched at first; alone, each write commits at once
        assert len(_workers_on_disk(db_path)) == 40

        async def put(worker_id: str) -> None:
            await backend.run(_put(worker_id, []), write=True)

        for i in range(LONE_WRITES_BETWEEN_BATCHES + 8):  # until a write is batched again, then with company
            commits_before = backend.change_token()[1]
            async with anyio.create_task_group() as tg:
                for j in range(4):
                    tg.start_soon(put, f"c{i}-{j}")
        assert backend.change_token()[1] - commits_before == 1  # the 4 tasks' writes share a commit again
    finally:
        backend.close()


async def test_inline_batch_rolls_a_failing_write_back_alone_and_aborts_on_what_no_savepoint_contains(
    db_path: Path, asyncio_only: None
) -> None:
    backend = SqliteBackend(db_path)
    try:
        outcomes: dict[str, Any] = {}

        def failing(tx: Any) -> None:
            tx.put_worker(Worker(worker_id="bad"))
            raise ValueError("boom")

        def abort(tx: Any) -> None:
            tx.put_worker(Worker(worker_id="x"))
            raise Abort()

        write = functools.partial(_outcome, outcomes, backend, catch=BaseException)

        async with anyio.create_task_group() as tg:
            tg.start_soon(write, "a", _put("a", []))
            tg.start_soon(write, "bad", failing)
            tg.start_soon(write, "b", _put("b", []))
        assert (outcomes["a"], outcomes["b"]) == ("a", "b") and isinstance(outcomes["bad"], ValueError)
        assert sorted(_workers_on_disk(db_path)) == ["a", "b"]

        outcomes.clear()
        async with anyio.create_task_group() as tg:
            tg.start_soon(write, "c", _put("c", []))
            tg.start_soon(write, "abort", abort)
        assert isinstance(outcomes["c"], Abort) and isinstance(outcomes["abort"], Abort)
        assert sorted(_workers_on_disk(db_path)) == ["a", "b"]
    finally:
        backend.close()


async def test_inline_batch_of_a_closed_backend_fails(db_path: Path, asyncio_only: None) -> None:
    backend = SqliteBackend(db_path)
    errors: List[BaseException] = []

    async def write() -> None:
        try:
            await backend.run(_put("w", []), write=True)
        except StoreClosedError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(write)
        tg.start_soon(write)
        await anyio.lowlevel.checkpoint()  # both writes queued, their commit not yet run
        backend.close()
    assert len(errors) == 2


async def test_inline_batch_cancelled_caller_gets_the_cancel_and_its_write_commits_with_the_turn(
    db_path: Path, asyncio_only: None
) -> None:
    backend = SqliteBackend(db_path)
    try:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await backend.run(_put("w", []), write=True)
        assert scope.cancelled_caught
        await anyio.lowlevel.checkpoint()
        assert _workers_on_disk(db_path) == ["w"]
    finally:
        backend.close()


async def test_inline_batch_waits_on_a_worker_thread_while_another_connection_writes(
    db_path: Path, asyncio_only: None
) -> None:
    backend = SqliteBackend(db_path)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock, as another process would
        results: List[str] = []

        async def write(i: int) -> None:
            results.append(await backend.run(_put(f"w{i}", []), write=True))

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(write, i)
            await anyio.sleep(0.2)
            assert results == []  # not acknowledged while the lock is held
            other.execute("ROLLBACK")
        assert sorted(results) == ["w0", "w1", "w2"]
        assert sorted(_workers_on_disk(db_path)) == ["w0", "w1", "w2"]
    finally:
        other.close()
        backend.close()
