"""Argument validation, errors, and closing a store."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from agentlightning.store.base import LightningStore
from agentlightning.store.errors import InvalidRequestError, NotFoundError, StoreClosedError

from ._support import (
    StoreFactory,
    running_rollout,
)

__all__ = ["ValidationTests", "CloseTests"]


@pytest.mark.anyio
class ValidationTests:
    """Unknown ids raise NotFoundError, bad arguments InvalidRequestError; errors leave data intact."""

    async def test_unknown_rollout_and_attempt(self, store: LightningStore) -> None:
        with pytest.raises(NotFoundError, match="Rollout nonexistent not found"):
            await store.start_attempt("nonexistent")
        with pytest.raises(NotFoundError, match="Rollout nonexistent not found"):
            await store.update_attempt("nonexistent", "latest", status="running")
        with pytest.raises(NotFoundError, match="nonexistent"):
            await store.update_rollout("nonexistent", status="running")
        queued = await store.enqueue_rollout("x")
        with pytest.raises(NotFoundError, match=f"No attempts found for rollout {queued.rollout_id}"):
            await store.update_attempt(queued.rollout_id, "at-whatever", status="running")
        with pytest.raises(NotFoundError, match=f"No attempts found for rollout {queued.rollout_id}"):
            await store.update_attempt(queued.rollout_id, "latest", status="running")
        claimed = await store.dequeue_rollout()
        assert claimed is not None
        with pytest.raises(NotFoundError, match=f"Attempt at-missing not found for rollout {claimed.rollout_id}"):
            await store.update_attempt(claimed.rollout_id, "at-missing", status="running")
        assert issubclass(NotFoundError, ValueError)

    async def test_errors_leave_data_intact(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        with pytest.raises(NotFoundError):
            await store.update_attempt(claimed.rollout_id, "at-missing", status="failed")
        with pytest.raises(ValueError):
            await store.update_attempt(claimed.rollout_id, "latest", status="exploded")  # type: ignore[arg-type]
        attempt = await store.get_latest_attempt(claimed.rollout_id)
        assert attempt is not None and attempt.status == "preparing"
        with pytest.raises(ValueError):
            await store.update_rollout(claimed.rollout_id, status="exploded")  # type: ignore[arg-type]
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "preparing"

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"limit": -2},
            {"offset": -1},
            {"sort_by": "no_such_field"},
            {"filter_logic": "xor"},
            {"sort_order": "sideways"},
        ],
    )
    async def test_bad_query_arguments(self, store: LightningStore, kwargs: Dict[str, Any]) -> None:
        await store.enqueue_rollout("x")
        with pytest.raises(InvalidRequestError):
            await store.query_rollouts(**kwargs)
        if "filter_logic" not in kwargs:
            with pytest.raises(InvalidRequestError):
                await store.query_attempts("ro-any", **kwargs)
            with pytest.raises(InvalidRequestError):
                await store.query_resources(**kwargs)
        with pytest.raises(InvalidRequestError):
            await store.query_spans("ro-any", **kwargs)
        with pytest.raises(InvalidRequestError):
            await store.query_workers(**kwargs)
        assert issubclass(InvalidRequestError, ValueError)


@pytest.mark.anyio
class CloseTests:
    """``close()`` is idempotent and a closed store refuses calls."""

    async def test_close_twice_and_use_after_close(self, make_store: StoreFactory) -> None:
        store = await make_store()
        await store.enqueue_rollout("x")
        await store.close()
        await store.close()
        with pytest.raises(StoreClosedError):
            await store.enqueue_rollout("y")
        with pytest.raises(StoreClosedError):
            await store.query_rollouts()

    async def test_async_context_manager_closes(self, make_store: StoreFactory) -> None:
        store = await make_store()
        async with store as entered:
            assert entered is store
            await store.enqueue_rollout("x")
        with pytest.raises(StoreClosedError):
            await store.dequeue_rollout()
