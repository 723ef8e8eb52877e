"""Writes a PostgreSQL transaction defers (sent with a later statement or before the commit): later reads of the
same transaction see them, a refused idempotency key takes them back, and a batch of rollouts is stored whole or
not at all."""

from __future__ import annotations

from typing import Any, Dict, List

import anyio
import attrs
import pytest
from agentlightning.types.core import Attempt, Rollout, Worker


def _rollout(rollout_id: str, status: str = "queuing") -> Rollout:
    return Rollout(rollout_id=rollout_id, input={"id": rollout_id}, start_time=1.0, status=status)  # type: ignore[arg-type]


def _attempt(rollout_id: str, attempt_id: str) -> Attempt:
    return Attempt(rollout_id=rollout_id, attempt_id=attempt_id, sequence_id=1, start_time=1.0)


def test_later_reads_of_a_transaction_see_its_deferred_writes(backend: Any) -> None:
    backend.run_sync(lambda tx: tx.insert_rollouts([_rollout("ro-1"), _rollout("ro-2")]), write=True)
    backend.run_sync(lambda tx: tx.insert_attempt(_attempt("ro-1", "at-1")), write=True)
    seen: List[Any] = []

    def work(tx: Any) -> None:
        rollout = tx.get_rollout("ro-1")  # read: its update is deferred
        attempt = tx.get_latest_attempts(["ro-1"])["ro-1"]
        tx.update_rollout(attrs.evolve(rollout, status="running"))
        tx.update_attempt(attrs.evolve(attempt, status="running"))
        tx.put_worker(Worker(worker_id="w-1", status="busy"))
        tx.sequence_raise("ro-1", 10)
        tx.sequence_raise("ro-1", 7)
        seen.append(tx.get_worker("w-1").status)  # the pending upsert answers
        seen.append([r.rollout_id for r in tx.iter_rollouts(status_in=["running"])])
        seen.append([a.status for a in tx.get_attempts("ro-1")])
        seen.append([w.worker_id for w in tx.iter_workers()])
        seen.append(tx.sequence_next("ro-1"))
        tx.update_rollout(attrs.evolve(rollout, status="succeeded", end_time=2.0))  # after the flush: still known
        seen.append(tx.get_rollout("ro-1").status)

    backend.run_sync(work, write=True)
    assert seen == ["busy", ["ro-1"], ["running"], ["w-1"], 11, "succeeded"]
    stored = backend.run_sync(lambda tx: (tx.get_rollout("ro-1"), tx.get_attempt("ro-1", "at-1")), write=False)
    assert (stored[0].status, stored[0].end_time, stored[1].status) == ("succeeded", 2.0, "running")
    with pytest.raises(ValueError):  # a row this transaction did not read is checked at once
        backend.run_sync(lambda tx: tx.update_attempt(_attempt("ro-2", "at-missing")), write=True)
    with pytest.raises(ValueError):
        backend.run_sync(lambda tx: tx.update_rollout(_rollout("ro-missing")), write=True)


def test_a_batch_of_rollouts_with_a_stored_id_stores_none_of_them(backend: Any) -> None:
    backend.run_sync(lambda tx: tx.insert_rollouts([_rollout("ro-old")]), write=True)

    def work(tx: Any) -> None:
        with pytest.raises(ValueError):
            tx.insert_rollouts([_rollout("ro-new"), _rollout("ro-old")])
        with pytest.raises(ValueError):
            tx.insert_rollouts([_rollout("ro-twice"), _rollout("ro-twice")])
        tx.insert_rollouts([_rollout("ro-later")])  # the transaction is still usable

    backend.run_sync(work, write=True)
    ids = backend.run_sync(lambda tx: [r.rollout_id for r in tx.iter_rollouts()], write=False)
    assert ids == ["ro-old", "ro-later"]


def test_a_key_recorded_already_takes_back_the_deferred_writes(
    schema_url: str, transaction_mode: Dict[str, str]
) -> None:
    """The retry's key insert fails at its commit (with its writes in one pipeline, or not): nothing of it stays."""
    from agentlightning.store.request_keys import request_key_scope
    from agentlightning_postgres import PostgresLightningStore

    async def run() -> None:
        first = PostgresLightningStore(schema_url, watchdog_interval=None, **transaction_mode)
        second = PostgresLightningStore(schema_url, watchdog_interval=None, **transaction_mode)
        try:
            await first.enqueue_rollout({"n": 1})
            claimed = await first.dequeue_rollout(worker_id="w-1")
            assert claimed is not None
            rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
            with request_key_scope("PATCH k1"):
                await first.update_attempt(rid, aid, metadata={"try": 1})
            with request_key_scope("PATCH k1") as retry:
                with pytest.raises(Exception, match="applied already"):
                    await second.update_attempt(rid, aid, status="succeeded", worker_id="w-2")
            assert retry.applied_before
            rollout = await second.get_rollout_by_id(rid)
            attempt = await second.get_latest_attempt(rid)
            assert rollout is not None and rollout.status == "preparing"
            assert attempt is not None and (attempt.status, attempt.metadata, attempt.worker_id) == (
                "preparing",
                {"try": 1},
                "w-1",
            )
            assert await second.get_worker_by_id("w-2") is None
        finally:
            await first.close()
            await second.close()

    anyio.run(run)
