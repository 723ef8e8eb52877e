"""Attempts and how their statuses propagate to rollouts (retries included)."""

from __future__ import annotations

from typing import Dict

import anyio
import pytest

from agentlightning.store.base import LightningStore
from agentlightning.types.core import (
    Attempt,
    AttemptedRollout,
    AttemptStatus,
    RolloutConfig,
)

from ._support import (
    running_rollout,
)

__all__ = ["AttemptTests"]


@pytest.mark.anyio
class AttemptTests:
    """``start_attempt``, ``update_attempt``, ``query_attempts`` and status propagation."""

    async def test_query_attempts(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        for _ in range(3):
            await store.start_attempt(claimed.rollout_id)
        asc = await store.query_attempts(claimed.rollout_id)
        assert [a.sequence_id for a in asc] == [1, 2, 3, 4] and asc.total == 4
        desc = await store.query_attempts(claimed.rollout_id, sort_order="desc")
        assert [a.sequence_id for a in desc] == [4, 3, 2, 1]
        page = await store.query_attempts(claimed.rollout_id, limit=2, offset=1)
        assert [a.sequence_id for a in page] == [2, 3] and (page.limit, page.offset, page.total) == (2, 1, 4)
        assert list(await store.query_attempts(claimed.rollout_id, offset=9)) == []
        zero = await store.query_attempts(claimed.rollout_id, limit=0)
        assert list(zero) == [] and zero.total == 4
        unknown = await store.query_attempts("ro-nonexistent")
        assert list(unknown) == [] and unknown.total == 0
        assert await store.get_latest_attempt("ro-nonexistent") is None
        queued = await store.enqueue_rollout("q")
        assert await store.get_latest_attempt(queued.rollout_id) is None

    async def test_start_attempt(self, store: LightningStore) -> None:
        queued = await store.enqueue_rollout("q", config=RolloutConfig(max_attempts=1))
        first = await store.start_attempt(queued.rollout_id, worker_id="w-a")
        assert first.attempt.sequence_id == 1 and first.status == "preparing" and first.attempt.worker_id == "w-a"
        second = await store.start_attempt(queued.rollout_id)
        third = await store.start_attempt(queued.rollout_id)
        assert (second.attempt.sequence_id, third.attempt.sequence_id) == (2, 3), "start_attempt ignores max_attempts"
        assert len({first.attempt.attempt_id, second.attempt.attempt_id, third.attempt.attempt_id}) == 3

    async def test_start_attempt_revives_final_rollout(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        await store.update_attempt(claimed.rollout_id, "latest", status="failed")
        failed = await store.get_rollout_by_id(claimed.rollout_id)
        assert failed is not None and failed.status == "failed"
        revived = await store.start_attempt(claimed.rollout_id)
        assert revived.status == "preparing" and revived.attempt.status == "preparing"

    async def test_update_attempt_fields(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        updated = await store.update_attempt(
            claimed.rollout_id,
            claimed.attempt.attempt_id,
            status="running",
            worker_id="w-up",
            last_heartbeat_time=123.0,
            metadata={"note": "x"},
        )
        assert isinstance(updated, Attempt)
        assert updated.status == "running" and updated.worker_id == "w-up"
        assert updated.last_heartbeat_time == 123.0 and updated.metadata == {"note": "x"}
        assert updated.end_time is None
        latest = await store.get_latest_attempt(claimed.rollout_id)
        assert latest == updated
        alias = await store.update_attempt(claimed.rollout_id, "latest", metadata={"note": "y"})
        assert alias.attempt_id == claimed.attempt.attempt_id and alias.metadata == {"note": "y"}
        assert alias.status == "running" and alias.worker_id == "w-up"

    async def test_end_time_only_for_failed_and_succeeded(self, store: LightningStore) -> None:
        ends_of: Dict[AttemptStatus, bool] = {
            "failed": True,
            "succeeded": True,
            "timeout": False,
            "unresponsive": False,
        }
        for status, ends in ends_of.items():
            claimed = await running_rollout(store)
            await anyio.sleep(0.005)
            updated = await store.update_attempt(claimed.rollout_id, "latest", status=status)
            assert (updated.end_time is not None) is ends, status
            if ends:
                assert updated.end_time is not None and updated.end_time > updated.start_time

    async def test_failed_attempt_fails_rollout(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        attempt = await store.update_attempt(claimed.rollout_id, "latest", status="failed")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "failed"
        assert rollout.end_time is not None and attempt.end_time is not None and rollout.end_time >= attempt.end_time

    async def test_rollout_follows_latest_attempt(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        for status in ("running", "succeeded", "preparing"):
            await store.update_attempt(claimed.rollout_id, "latest", status=status)
            rollout = await store.get_rollout_by_id(claimed.rollout_id)
            assert rollout is not None and rollout.status == status

    async def test_only_latest_attempt_propagates(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        second = await store.start_attempt(claimed.rollout_id)
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert isinstance(rollout, AttemptedRollout)
        assert rollout.status == "preparing" and rollout.attempt.attempt_id == second.attempt.attempt_id
        await store.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status="succeeded")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "preparing"
        await store.update_attempt(claimed.rollout_id, second.attempt.attempt_id, status="running")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "running"

    @pytest.mark.parametrize("status", ["failed", "timeout", "unresponsive"])
    async def test_retry_only_while_attempts_remain(self, store: LightningStore, status: AttemptStatus) -> None:
        config = RolloutConfig(max_attempts=2, retry_condition=[status])
        claimed = await running_rollout(store, config=config)
        await store.update_attempt(claimed.rollout_id, "latest", status=status)
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "requeuing"
        retry = await store.dequeue_rollout()
        assert retry is not None and retry.rollout_id == claimed.rollout_id and retry.attempt.sequence_id == 2
        await store.update_attempt(claimed.rollout_id, "latest", status=status)
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "failed"
        assert await store.dequeue_rollout() is None

    async def test_no_retry_outside_retry_condition(self, store: LightningStore) -> None:
        config = RolloutConfig(max_attempts=3, retry_condition=["timeout"])
        claimed = await running_rollout(store, config=config)
        await store.update_attempt(claimed.rollout_id, "latest", status="failed")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "failed"

    async def test_final_rollout_not_protected(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        await store.update_attempt(claimed.rollout_id, "latest", status="failed")
        await store.update_attempt(claimed.rollout_id, "latest", status="succeeded")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "succeeded"

    async def test_update_rollout_does_not_touch_attempts(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        await store.update_rollout(claimed.rollout_id, status="cancelled")
        attempt = await store.get_latest_attempt(claimed.rollout_id)
        assert attempt is not None and attempt.status == "preparing"
