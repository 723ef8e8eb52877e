"""``wait_for_rollouts``: wake-ups, timeouts, cancellation."""

from __future__ import annotations

import time
from typing import Any, Dict, List

import anyio
import pytest

from agentlightning.store.base import LightningStore
from agentlightning.types.core import AttemptStatus

from ._support import (
    WAKE_BOUND,
    rollout_ids,
    running_rollout,
)

__all__ = ["WaitForRolloutsTests"]


@pytest.mark.anyio
class WaitForRolloutsTests:
    """``wait_for_rollouts`` wakes promptly, honours its timeout and can be cancelled."""

    @pytest.mark.parametrize("status", ["succeeded", "failed"])
    async def test_wakes_promptly_on_completion(self, store: LightningStore, status: AttemptStatus) -> None:
        claimed = await running_rollout(store)
        result: Dict[str, Any] = {}

        async def wait() -> None:
            result["rollouts"] = await store.wait_for_rollouts(rollout_ids=[claimed.rollout_id], timeout=None)
            result["at"] = time.monotonic()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await anyio.sleep(0.1)
                updated_at = time.monotonic()
                await store.update_attempt(claimed.rollout_id, "latest", status=status)
        assert [r.rollout_id for r in result["rollouts"]] == [claimed.rollout_id]
        assert result["rollouts"][0].status == status
        assert result["at"] - updated_at < WAKE_BOUND

    async def test_wakes_on_update_rollout(self, store: LightningStore) -> None:
        queued = await store.enqueue_rollout("x")
        result: Dict[str, Any] = {}

        async def wait() -> None:
            result["rollouts"] = await store.wait_for_rollouts(rollout_ids=[queued.rollout_id], timeout=5.0)
            result["at"] = time.monotonic()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.sleep(0.1)
            updated_at = time.monotonic()
            await store.update_rollout(queued.rollout_id, status="cancelled")
        assert [r.status for r in result["rollouts"]] == ["cancelled"]
        assert result["at"] - updated_at < WAKE_BOUND

    async def test_timeout_returns_partial_in_input_order(self, store: LightningStore) -> None:
        a = await store.enqueue_rollout("a")
        b = await store.enqueue_rollout("b")
        c = await store.enqueue_rollout("c")
        await store.update_rollout(c.rollout_id, status="succeeded")
        await store.update_rollout(a.rollout_id, status="failed")
        start = time.monotonic()
        got = await store.wait_for_rollouts(rollout_ids=[c.rollout_id, b.rollout_id, a.rollout_id], timeout=0.1)
        assert rollout_ids(got) == [c.rollout_id, a.rollout_id]
        assert time.monotonic() - start < 0.1 + WAKE_BOUND

    async def test_timeout_with_nothing_finished(self, store: LightningStore) -> None:
        queued = await store.enqueue_rollout("x")
        start = time.monotonic()
        assert await store.wait_for_rollouts(rollout_ids=[queued.rollout_id], timeout=0.1) == []
        assert time.monotonic() - start < 0.1 + WAKE_BOUND

    async def test_timeout_zero_returns_immediately(self, store: LightningStore) -> None:
        queued = await store.enqueue_rollout("x")
        done = await store.enqueue_rollout("y")
        await store.update_rollout(done.rollout_id, status="succeeded")
        start = time.monotonic()
        got = await store.wait_for_rollouts(rollout_ids=[queued.rollout_id, done.rollout_id], timeout=0)
        assert rollout_ids(got) == [done.rollout_id]
        assert time.monotonic() - start < 0.5

    async def test_already_finished_and_unknown_ids(self, store: LightningStore) -> None:
        done = await store.enqueue_rollout("y")
        await store.update_rollout(done.rollout_id, status="succeeded")
        with anyio.fail_after(WAKE_BOUND):
            got = await store.wait_for_rollouts(rollout_ids=[done.rollout_id], timeout=None)
        assert rollout_ids(got) == [done.rollout_id]
        with anyio.fail_after(WAKE_BOUND + 0.1):
            assert await store.wait_for_rollouts(rollout_ids=["ro-nonexistent"], timeout=0.1) == []
            mixed = await store.wait_for_rollouts(rollout_ids=["ro-nonexistent", done.rollout_id], timeout=0.1)
        assert rollout_ids(mixed) == [done.rollout_id]

    async def test_cancellable(self, store: LightningStore) -> None:
        queued = await store.enqueue_rollout("x")
        start = time.monotonic()
        with anyio.move_on_after(0.1) as scope:
            await store.wait_for_rollouts(rollout_ids=[queued.rollout_id], timeout=None)
        assert scope.cancelled_caught
        assert time.monotonic() - start < 0.1 + WAKE_BOUND
        await store.update_rollout(queued.rollout_id, status="succeeded")
        with anyio.fail_after(WAKE_BOUND):
            got = await store.wait_for_rollouts(rollout_ids=[queued.rollout_id], timeout=None)
        assert rollout_ids(got) == [queued.rollout_id]

    async def test_concurrent_waiters(self, store: LightningStore) -> None:
        rollouts = [await store.enqueue_rollout(i) for i in range(5)]
        ids = rollout_ids(rollouts)
        results: Dict[int, List[str]] = {}

        async def wait(index: int) -> None:
            order = ids[index:] + ids[:index]
            results[index] = rollout_ids(await store.wait_for_rollouts(rollout_ids=order, timeout=5.0))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for index in range(5):
                    tg.start_soon(wait, index)
                await anyio.sleep(0.1)
                for rollout in reversed(rollouts):
                    await store.update_rollout(rollout.rollout_id, status="succeeded")
        for index in range(5):
            assert results[index] == ids[index:] + ids[:index]
