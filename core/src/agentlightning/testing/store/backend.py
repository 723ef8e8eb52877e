"""Checks of a :class:`~agentlightning.store.backend.StorageBackend` on its own, below the engine.

The store-level suites find a backend's bugs too, but from far away; these name the broken transaction method. The
plugin defines a ``backend`` fixture: a fresh, empty backend (the plugin closes it).
"""

from __future__ import annotations

import threading
from typing import Any, List

import attrs
import pytest

from agentlightning.store.backend import StorageBackend, StorageTransaction
from agentlightning.types.core import Attempt, Rollout, Worker
from agentlightning.types.resources import PromptTemplate, ResourcesUpdate

from ._support import make_span

__all__ = ["StorageBackendConformance"]


def _rollout(rollout_id: str, status: str = "queuing") -> Rollout:
    return Rollout(rollout_id=rollout_id, input={"id": rollout_id}, start_time=1.0, status=status)  # type: ignore[arg-type]


def _attempt(rollout_id: str, sequence_id: int) -> Attempt:
    return Attempt(
        rollout_id=rollout_id, attempt_id=f"at-{rollout_id}-{sequence_id}", sequence_id=sequence_id, start_time=2.0
    )


def _resources(resources_id: str, update_time: float, version: int, template: str) -> ResourcesUpdate:
    return ResourcesUpdate(
        resources_id=resources_id,
        create_time=1.0,
        update_time=update_time,
        version=version,
        resources={"p": PromptTemplate(template=template)},
    )


class _Boom(Exception):
    pass


class StorageBackendConformance:
    """StorageTransaction semantics and StorageBackend plumbing (``run``, ``run_sync``, ``change_token``)."""

    @staticmethod
    def write(backend: StorageBackend, fn: Any) -> Any:
        return backend.run_sync(fn, write=True)

    @staticmethod
    def read(backend: StorageBackend, fn: Any) -> Any:
        return backend.run_sync(fn, write=False)

    def test_backend_rollouts(self, backend: StorageBackend) -> None:
        rollouts = [_rollout("ro-b"), _rollout("ro-a", "running"), _rollout("ro-c")]
        self.write(backend, lambda tx: tx.insert_rollouts(rollouts))
        assert self.read(backend, lambda tx: tx.get_rollout("ro-a")) == rollouts[1]
        assert self.read(backend, lambda tx: tx.get_rollout("ro-missing")) is None
        every = self.read(backend, lambda tx: list(tx.iter_rollouts()))
        assert [r.rollout_id for r in every] == ["ro-b", "ro-a", "ro-c"], "iteration must follow insertion order"
        assert self.read(backend, lambda tx: tx.count_rollouts()) == 3
        changed = attrs.evolve(rollouts[0], status="succeeded", end_time=3.0)
        self.write(backend, lambda tx: tx.update_rollout(changed))
        assert self.read(backend, lambda tx: tx.get_rollout("ro-b")) == changed
        with pytest.raises(ValueError):
            self.write(backend, lambda tx: tx.insert_rollouts([_rollout("ro-a")]))

    def test_backend_rollout_hints_never_drop_matches(self, backend: StorageBackend) -> None:
        self.write(backend, lambda tx: tx.insert_rollouts([_rollout("ro-1"), _rollout("ro-2", "running")]))
        by_status = self.read(backend, lambda tx: [r.rollout_id for r in tx.iter_rollouts(status_in=["running"])])
        assert "ro-2" in by_status
        by_id = self.read(backend, lambda tx: [r.rollout_id for r in tx.iter_rollouts(rollout_id_in=["ro-1"])])
        assert "ro-1" in by_id

    def test_backend_attempts(self, backend: StorageBackend) -> None:
        def fill(tx: StorageTransaction) -> None:
            tx.insert_rollouts([_rollout("ro-1"), _rollout("ro-2")])
            for seq in (1, 2, 3):
                tx.insert_attempt(_attempt("ro-1", seq))
            tx.insert_attempt(_attempt("ro-2", 1))

        self.write(backend, fill)
        assert [a.sequence_id for a in self.read(backend, lambda tx: tx.get_attempts("ro-1"))] == [1, 2, 3]
        latest = self.read(backend, lambda tx: tx.get_latest_attempts(["ro-1", "ro-2", "ro-none"]))
        assert {k: v.sequence_id for k, v in latest.items()} == {"ro-1": 3, "ro-2": 1}
        assert self.read(backend, lambda tx: tx.get_attempt("ro-1", "at-ro-1-2")) == _attempt("ro-1", 2)
        assert self.read(backend, lambda tx: tx.get_attempt("ro-2", "at-ro-1-2")) is None
        running = attrs.evolve(_attempt("ro-1", 2), status="running", last_heartbeat_time=5.0)
        self.write(backend, lambda tx: tx.update_attempt(running))
        assert self.read(backend, lambda tx: tx.get_attempts("ro-1"))[1] == running
        assert self.read(backend, lambda tx: tx.count_attempts()) == 4

    def test_backend_queue_is_fifo_without_duplicates(self, backend: StorageBackend) -> None:
        self.write(backend, lambda tx: tx.queue_push(["ro-1", "ro-2"]))
        self.write(backend, lambda tx: tx.queue_push(["ro-1", "ro-3"]))
        assert self.read(backend, lambda tx: tx.queue_contains("ro-3"))
        assert self.write(backend, lambda tx: tx.queue_pop(2)) == ["ro-1", "ro-2"]
        assert not self.read(backend, lambda tx: tx.queue_contains("ro-1"))
        self.write(backend, lambda tx: tx.queue_push(["ro-1"]))
        assert self.write(backend, lambda tx: tx.queue_pop(10)) == ["ro-3", "ro-1"]
        assert self.write(backend, lambda tx: tx.queue_pop(1)) == []

    def test_backend_sequence_counters(self, backend: StorageBackend) -> None:
        assert self.write(backend, lambda tx: tx.sequence_next("ro-1")) == 1
        assert self.write(backend, lambda tx: tx.sequence_next("ro-1", 3)) == 2
        assert self.write(backend, lambda tx: tx.sequence_next("ro-2")) == 1
        self.write(backend, lambda tx: tx.sequence_raise("ro-1", 10))
        self.write(backend, lambda tx: tx.sequence_raise("ro-1", 7))
        assert self.write(backend, lambda tx: tx.sequence_next("ro-1")) == 11

    def test_backend_spans(self, backend: StorageBackend) -> None:
        a = make_span("ro-1", "at-1", 2, span_id="a" * 16)
        b = make_span("ro-1", "at-2", 1, span_id="b" * 16)
        same_id_other_attempt = make_span("ro-1", "at-2", 3, span_id="a" * 16)
        assert self.write(backend, lambda tx: tx.insert_spans([a, b])) == [True, True]
        assert self.write(backend, lambda tx: tx.insert_spans([a, same_id_other_attempt])) == [False, True]
        assert self.read(backend, lambda tx: tx.get_spans("ro-1")) == [b, a, same_id_other_attempt]
        assert self.read(backend, lambda tx: tx.get_spans("ro-1", "at-2")) == [b, same_id_other_attempt]
        assert self.read(backend, lambda tx: tx.get_spans("ro-none")) == []
        assert self.read(backend, lambda tx: tx.count_spans()) == 3

    def test_backend_resources_and_workers(self, backend: StorageBackend) -> None:
        first = _resources("rs-1", 1.0, 1, "one")
        second = _resources("rs-2", 2.0, 1, "two")
        assert self.read(backend, lambda tx: tx.get_latest_resources()) is None
        self.write(backend, lambda tx: tx.put_resources(first))
        self.write(backend, lambda tx: tx.put_resources(second))
        again = _resources("rs-1", 3.0, 2, "again")
        self.write(backend, lambda tx: tx.put_resources(again))
        assert self.read(backend, lambda tx: tx.get_latest_resources()) == again, "the written one is the latest"
        assert self.read(backend, lambda tx: tx.get_resources("rs-2")) == second
        assert {u.resources_id for u in self.read(backend, lambda tx: list(tx.iter_resources()))} == {"rs-1", "rs-2"}
        assert self.read(backend, lambda tx: tx.count_resources()) == 2
        worker = Worker(worker_id="w-1", status="busy", heartbeat_stats={"gpu": 1})
        self.write(backend, lambda tx: tx.put_worker(worker))
        self.write(backend, lambda tx: tx.put_worker(Worker(worker_id="w-2")))
        assert self.read(backend, lambda tx: tx.get_worker("w-1")) == worker
        assert [w.worker_id for w in self.read(backend, lambda tx: list(tx.iter_workers()))] == ["w-1", "w-2"]
        assert self.read(backend, lambda tx: tx.count_workers()) == 2

    def test_backend_errors_propagate_unchanged(self, backend: StorageBackend) -> None:
        error = _Boom("from inside the transaction")

        def fail(tx: StorageTransaction) -> None:
            raise error

        with pytest.raises(_Boom) as caught:
            self.write(backend, fail)
        assert caught.value is error
        assert self.write(backend, lambda tx: tx.sequence_next("ro-after")) == 1, "the backend is usable afterwards"

    def test_backend_change_token_moves_on_writes_when_shared(self, backend: StorageBackend) -> None:
        """Only a backend shared across processes must move its token (a memory backend may return a constant)."""
        before = backend.change_token()
        self.write(backend, lambda tx: tx.queue_push(["ro-token"]))
        after = backend.change_token()
        assert isinstance(backend.statistics(), dict)
        if backend.shared_across_processes:
            assert after != before, "the engine polls change_token to see other processes' writes"

    @pytest.mark.anyio
    async def test_backend_run_from_event_loops_and_threads(self, backend: StorageBackend) -> None:
        assert await backend.run(lambda tx: tx.sequence_next("ro-1"), write=True) == 1
        results: List[int] = []

        def in_thread() -> None:
            results.append(backend.run_sync(lambda tx: tx.sequence_next("ro-1"), write=True))

        threads = [threading.Thread(target=in_thread) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(results) == [2, 3, 4, 5], "concurrent transactions must not lose writes"
        assert await backend.run(lambda tx: tx.sequence_next("ro-1"), write=True) == 6
