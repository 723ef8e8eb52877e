"""Timeouts and unresponsive attempts.

:class:`TimeoutTests` holds the contract: a store notices an overdue attempt on its own, within
:data:`~._support.TIMEOUT_BOUND` seconds, whatever mechanism it uses. :class:`EngineTimeoutTests` checks the engine's
mechanism exactly and without sleeping: the store gets a :class:`~._support.ManualClock` (``clock=``), the test moves
it, and ``scan_debounce_seconds`` / ``watchdog_interval`` decide when the scan runs.
"""

from __future__ import annotations

from typing import Optional

import anyio
import pytest

from agentlightning.store.base import LightningStore
from agentlightning.types.core import AttemptedRollout, RolloutConfig

from ._support import TIMEOUT_BOUND, ManualClock, StoreFactory, make_span, poll, running_rollout

__all__ = ["TimeoutTests", "EngineTimeoutTests"]


async def _latest_status(store: LightningStore, rollout_id: str) -> Optional[str]:
    attempt = await store.get_latest_attempt(rollout_id)
    return None if attempt is None else attempt.status


async def _becomes(store: LightningStore, rollout_id: str, status: str, interval: float = 0.05) -> bool:
    """Whether the rollout's latest attempt reaches ``status`` within ``TIMEOUT_BOUND`` seconds."""

    async def reached() -> bool:
        return await _latest_status(store, rollout_id) == status

    return await poll(reached, timeout=TIMEOUT_BOUND, interval=interval)


@pytest.mark.anyio
class TimeoutTests:
    """Overdue attempts become ``timeout`` / ``unresponsive`` and their rollouts retry or fail."""

    async def test_timeout_requeues(self, store: LightningStore) -> None:
        config = RolloutConfig(timeout_seconds=0.1, max_attempts=2, retry_condition=["timeout"])
        claimed = await running_rollout(store, config=config)
        assert await _becomes(store, claimed.rollout_id, "timeout"), "an overdue attempt was not marked timeout"
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert isinstance(rollout, AttemptedRollout)
        assert rollout.status == "requeuing" and rollout.attempt.end_time is None
        retry = await store.dequeue_rollout()
        assert retry is not None and retry.attempt.sequence_id == 2

    async def test_unresponsive_fails_when_not_retried(self, store: LightningStore) -> None:
        config = RolloutConfig(unresponsive_seconds=0.1, max_attempts=3, retry_condition=["timeout"])
        claimed = await running_rollout(store, config=config)
        assert await _becomes(store, claimed.rollout_id, "unresponsive"), "a silent attempt was not marked unresponsive"
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "failed"


@pytest.mark.anyio
class EngineTimeoutTests:
    """The engine's timeout scan, driven by a manual clock (the factory must pass ``clock=`` to the engine)."""

    async def test_clock_sets_timestamps(self, make_store: StoreFactory) -> None:
        clock = ManualClock()
        store = await make_store(clock=clock)
        claimed = await running_rollout(store)
        assert claimed.start_time == claimed.attempt.start_time == clock.now
        clock.advance(7.0)
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        attempt = await store.get_latest_attempt(claimed.rollout_id)
        assert attempt is not None and attempt.last_heartbeat_time == clock.now
        clock.advance(3.0)
        done = await store.update_attempt(claimed.rollout_id, "latest", status="succeeded")
        assert done.end_time == clock.now
        worker = await store.update_worker("w-clock", {})
        assert worker.last_heartbeat_time == clock.now

    async def test_timeout_fires_just_past_the_limit(self, make_store: StoreFactory) -> None:
        clock = ManualClock()
        store = await make_store(clock=clock)
        config = RolloutConfig(timeout_seconds=10.0, max_attempts=2, retry_condition=["timeout"])
        claimed = await running_rollout(store, config=config)
        clock.advance(10.0)
        assert await _latest_status(store, claimed.rollout_id) == "preparing", "the limit itself is not overdue"
        clock.advance(0.5)
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert isinstance(rollout, AttemptedRollout)
        assert rollout.attempt.status == "timeout" and rollout.status == "requeuing"
        assert rollout.attempt.end_time is None
        retry = await store.dequeue_rollout()
        assert retry is not None and retry.attempt.sequence_id == 2 and retry.attempt.start_time == clock.now

    async def test_spans_keep_an_attempt_responsive(self, make_store: StoreFactory) -> None:
        clock = ManualClock()
        store = await make_store(clock=clock)
        config = RolloutConfig(unresponsive_seconds=5.0, max_attempts=3, retry_condition=["timeout"])
        claimed = await running_rollout(store, config=config)
        clock.advance(3.0)
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        clock.advance(4.0)  # 7 s after the start, 4 s after the last span
        assert await _latest_status(store, claimed.rollout_id) == "running"
        clock.advance(1.5)
        assert await _latest_status(store, claimed.rollout_id) == "unresponsive"
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "failed", "unresponsive is not in retry_condition"

    async def test_marks_worker_unknown(self, make_store: StoreFactory) -> None:
        clock = ManualClock()
        store = await make_store(clock=clock)
        await store.update_worker("w-wd", {"s": 1})
        await store.enqueue_rollout("x", config=RolloutConfig(timeout_seconds=1.0))
        claimed = await store.dequeue_rollout(worker_id="w-wd")
        assert claimed is not None
        clock.advance(2.0)
        workers = await store.query_workers()
        worker = await store.get_worker_by_id("w-wd")
        assert worker is not None and worker.status == "unknown"
        assert worker.current_rollout_id is None and worker.heartbeat_stats == {"s": 1}
        assert [w.worker_id for w in workers] == ["w-wd"]

    async def test_recovered_attempt_finishes_without_retry(self, make_store: StoreFactory) -> None:
        clock = ManualClock()
        store = await make_store(clock=clock)
        config = RolloutConfig(unresponsive_seconds=1.0, max_attempts=2, retry_condition=["unresponsive"])
        claimed = await running_rollout(store, config=config)
        clock.advance(2.0)
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "requeuing"
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        await store.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status="succeeded")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "succeeded"
        assert await store.dequeue_rollout() is None
        assert len(await store.query_attempts(claimed.rollout_id)) == 1

    async def test_old_attempt_recovering_after_retry_leaves_rollout(self, make_store: StoreFactory) -> None:
        clock = ManualClock()
        store = await make_store(clock=clock)
        config = RolloutConfig(timeout_seconds=1.0, max_attempts=2, retry_condition=["timeout"])
        claimed = await running_rollout(store, config=config)
        clock.advance(2.0)
        retry = await store.dequeue_rollout()
        assert retry is not None and retry.attempt.sequence_id == 2
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert isinstance(rollout, AttemptedRollout)
        assert rollout.status == "preparing" and rollout.attempt.attempt_id == retry.attempt.attempt_id
        old = (await store.query_attempts(claimed.rollout_id))[0]
        assert old.status == "timeout"

    async def test_debounce_delays_scans(self, make_store: StoreFactory) -> None:
        clock = ManualClock()
        store = await make_store(clock=clock, scan_debounce_seconds=60.0)
        claimed = await running_rollout(store, config=RolloutConfig(timeout_seconds=1.0))
        clock.advance(30.0)
        assert await _latest_status(store, claimed.rollout_id) == "preparing", "a debounced store scanned early"
        clock.advance(30.0)
        assert await _latest_status(store, claimed.rollout_id) == "timeout"

    async def test_background_watchdog_times_out_idle_store(self, make_store: StoreFactory) -> None:
        # calls never scan (the debounce outlasts the test): only the watchdog thread can time the attempt out
        clock = ManualClock()
        store = await make_store(clock=clock, scan_debounce_seconds=3600.0, watchdog_interval=0.02)
        claimed = await running_rollout(store, config=RolloutConfig(timeout_seconds=1.0))
        clock.advance(2.0)
        with anyio.fail_after(TIMEOUT_BOUND + 1):
            assert await _becomes(store, claimed.rollout_id, "timeout", interval=0.02), "the watchdog never scanned"
