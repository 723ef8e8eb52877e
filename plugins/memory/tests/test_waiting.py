"""wait_for_rollouts over the memory store: reports of finished rollouts are confirmed by a read before answering."""

from __future__ import annotations

from typing import Any, Dict

import anyio
import pytest
from agentlightning.types.core import EnqueueRolloutRequest
from agentlightning_memory import InMemoryLightningStore

pytestmark = pytest.mark.anyio


async def test_a_spurious_report_is_not_taken_for_a_finish(anyio_backend: str) -> None:
    store = InMemoryLightningStore(watchdog_interval=None, scan_debounce_seconds=3600)
    try:
        a, b = await store.enqueue_many_rollouts([EnqueueRolloutRequest(input=i) for i in range(2)])
        ids = [a.rollout_id, b.rollout_id]
        result: Dict[str, Any] = {}

        async def wait() -> None:
            result["got"] = await store.wait_for_rollouts(rollout_ids=ids, timeout=30)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                # the memory store works inline: once every task is blocked, the waiter has handled each report
                tg.start_soon(wait)
                await anyio.wait_all_tasks_blocked()
                store._notifier.notify(ids)  # both reported finished (as after a rolled-back write): neither is
                await anyio.wait_all_tasks_blocked()
                assert "got" not in result
                await store.update_rollout(a.rollout_id, status="succeeded")
                await anyio.wait_all_tasks_blocked()
                assert "got" not in result  # b's earlier report was not confirmed: still waiting for it
                await store.update_rollout(b.rollout_id, status="cancelled")
        assert [(r.rollout_id, r.status) for r in result["got"]] == [
            (a.rollout_id, "succeeded"),
            (b.rollout_id, "cancelled"),
        ]
    finally:
        await store.close()
