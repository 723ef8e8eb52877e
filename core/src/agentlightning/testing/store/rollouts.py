"""Creating, reading and updating rollouts, ``query_rollouts`` and ``statistics``."""

from __future__ import annotations

import time
from typing import List, Tuple

import anyio
import pytest

from agentlightning.store.base import LightningStore
from agentlightning.types.core import (
    AttemptedRollout,
    EnqueueRolloutRequest,
    PaginatedResult,
    Rollout,
    RolloutConfig,
)
from agentlightning.types.resources import LLM, PromptTemplate

from ._support import (
    make_span,
    rollout_ids,
    running_rollout,
)

__all__ = ["StatisticsTests", "RolloutTests", "QueryRolloutsTests"]


@pytest.mark.anyio
class StatisticsTests:
    """``statistics()`` counters and uptime."""

    served_store_names: Tuple[str, ...] = ()
    """For a client of a served store: the served stores' class names, which its statistics report (as upstream's)."""

    async def test_counters_follow_operations(self, store: LightningStore) -> None:
        stats = await store.statistics()
        assert stats["name"] in (type(store).__name__, *self.served_store_names)
        for key in ("total_rollouts", "total_attempts", "total_spans", "total_resources", "total_workers"):
            assert stats.get(key) == 0, key
        await store.enqueue_rollout("a")
        assert (await store.statistics())["total_rollouts"] == 1
        claimed = await store.dequeue_rollout()
        assert claimed is not None
        assert (await store.statistics())["total_attempts"] == 1
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        assert (await store.statistics())["total_spans"] == 1
        await store.add_resources({"p": PromptTemplate(template="x")})
        assert (await store.statistics())["total_resources"] == 1
        await store.update_worker("w-stats", {"cpu": 1})
        assert (await store.statistics())["total_workers"] == 1

    async def test_uptime_increases(self, store: LightningStore) -> None:
        first = (await store.statistics())["uptime"]
        await anyio.sleep(0.02)
        second = (await store.statistics())["uptime"]
        assert first >= 0 and second > first


@pytest.mark.anyio
class RolloutTests:
    """Enqueueing, starting, reading and updating rollouts."""

    async def test_enqueue_echoes_fields(self, store: LightningStore) -> None:
        config = RolloutConfig(timeout_seconds=30.0, max_attempts=3, retry_condition=["failed", "timeout"])
        rollout = await store.enqueue_rollout(
            {"q": "2+2"}, mode="train", resources_id="rs-unknown", config=config, metadata={"k": 1}
        )
        assert rollout.rollout_id.startswith("ro-")
        assert rollout.status == "queuing"
        assert rollout.input == {"q": "2+2"} and rollout.mode == "train"
        assert rollout.resources_id == "rs-unknown"
        assert rollout.metadata == {"k": 1}
        assert rollout.config == config
        assert not isinstance(rollout, AttemptedRollout)
        stored = await store.get_rollout_by_id(rollout.rollout_id)
        assert stored is not None and stored.config == config and stored.status == "queuing"
        assert not isinstance(stored, AttemptedRollout)

    async def test_enqueue_defaults(self, store: LightningStore) -> None:
        before = time.time()
        rollout = await store.enqueue_rollout("plain")
        assert rollout.config == RolloutConfig()
        assert rollout.mode is None and rollout.resources_id is None
        assert not rollout.metadata
        assert rollout.end_time is None and before <= rollout.start_time <= time.time()

    async def test_config_is_copied(self, store: LightningStore) -> None:
        config = RolloutConfig(retry_condition=["failed"], max_attempts=2)
        first = await store.enqueue_rollout("a", config=config)
        config.retry_condition.append("timeout")
        second = await store.enqueue_rollout("b", config=RolloutConfig(max_attempts=5))
        stored = await store.get_rollout_by_id(first.rollout_id)
        assert stored is not None and stored.config.retry_condition == ["failed"]
        other = await store.get_rollout_by_id(second.rollout_id)
        assert other is not None and other.config.max_attempts == 5

    async def test_start_rollout(self, store: LightningStore) -> None:
        config = RolloutConfig(max_attempts=2)
        started = await store.start_rollout({"x": 1}, mode="val", config=config, metadata={"m": True})
        assert isinstance(started, AttemptedRollout)
        assert started.status == "preparing" and started.rollout_id.startswith("ro-")
        assert started.attempt.attempt_id.startswith("at-")
        assert started.attempt.sequence_id == 1 and started.attempt.status == "preparing"
        assert started.attempt.rollout_id == started.rollout_id
        assert started.config == config and started.mode == "val" and started.metadata == {"m": True}
        preparing = await store.query_rollouts(status_in=["preparing"])
        assert rollout_ids(preparing) == [started.rollout_id]
        attempts = await store.query_attempts(started.rollout_id)
        assert [a.attempt_id for a in attempts] == [started.attempt.attempt_id]
        latest = await store.get_latest_attempt(started.rollout_id)
        assert latest is not None and latest.attempt_id == started.attempt.attempt_id
        assert await store.dequeue_rollout() is None, "start_rollout must not queue the rollout"

    async def test_enqueue_inherits_latest_resources(self, store: LightningStore) -> None:
        update = await store.add_resources({"llm": LLM(endpoint="http://127.0.0.1:1/v1", model="m")})
        inherited = await store.enqueue_rollout("a")
        explicit = await store.enqueue_rollout("b", resources_id="rs-given")
        started = await store.start_rollout("c")
        many = await store.enqueue_many_rollouts([EnqueueRolloutRequest(input="d")])
        assert inherited.resources_id == update.resources_id
        assert explicit.resources_id == "rs-given"
        assert started.resources_id == update.resources_id
        assert many[0].resources_id == update.resources_id

    async def test_enqueue_many_preserves_order_and_fields(self, store: LightningStore) -> None:
        requests = [
            EnqueueRolloutRequest(input={"i": 0}, mode="train"),
            EnqueueRolloutRequest(input={"i": 1}, metadata={"m": 1}, config=RolloutConfig(max_attempts=2)),
            EnqueueRolloutRequest(input={"i": 2}, resources_id="rs-x"),
        ]
        created = await store.enqueue_many_rollouts(requests)
        assert [r.input for r in created] == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert created[0].mode == "train" and created[1].metadata == {"m": 1}
        assert created[1].config.max_attempts == 2 and created[2].resources_id == "rs-x"
        assert all(r.status == "queuing" for r in created)
        assert len({r.rollout_id for r in created}) == 3
        dequeued = [await store.dequeue_rollout() for _ in range(3)]
        assert rollout_ids(dequeued) == rollout_ids(created)

    async def test_get_rollout_by_id(self, store: LightningStore) -> None:
        assert await store.get_rollout_by_id("ro-missing") is None
        queued = await store.enqueue_rollout("a")
        plain = await store.get_rollout_by_id(queued.rollout_id)
        assert plain is not None and not isinstance(plain, AttemptedRollout)
        claimed = await store.dequeue_rollout()
        assert claimed is not None
        with_attempt = await store.get_rollout_by_id(queued.rollout_id)
        assert isinstance(with_attempt, AttemptedRollout)
        assert with_attempt.attempt.attempt_id == claimed.attempt.attempt_id
        second = await store.start_attempt(queued.rollout_id)
        latest = await store.get_rollout_by_id(queued.rollout_id)
        assert isinstance(latest, AttemptedRollout) and latest.attempt.attempt_id == second.attempt.attempt_id
        await store.update_rollout(queued.rollout_id, metadata={"seen": True})
        refreshed = await store.get_rollout_by_id(queued.rollout_id)
        assert refreshed is not None and refreshed.metadata == {"seen": True}

    async def test_update_rollout_fields(self, store: LightningStore) -> None:
        rollout = await store.enqueue_rollout("old", mode="train", metadata={"a": 1})
        other = await store.enqueue_rollout("other")
        config = RolloutConfig(timeout_seconds=5.0, max_attempts=4, retry_condition=["timeout"])
        updated = await store.update_rollout(
            rollout.rollout_id,
            input="new",
            mode="test",
            resources_id="rs-new",
            status="running",
            config=config,
            metadata={"b": 2},
        )
        assert updated.input == "new" and updated.mode == "test" and updated.resources_id == "rs-new"
        assert updated.status == "running" and updated.config == config and updated.metadata == {"b": 2}
        stored = await store.get_rollout_by_id(rollout.rollout_id)
        assert stored is not None and stored.config == config and stored.input == "new"
        untouched = await store.get_rollout_by_id(other.rollout_id)
        assert untouched is not None and untouched.config == RolloutConfig() and untouched.input == "other"

    async def test_update_rollout_none_clears_unset_keeps(self, store: LightningStore) -> None:
        rollout = await store.enqueue_rollout("x", mode="train", resources_id="rs-1", metadata={"a": 1})
        updated = await store.update_rollout(rollout.rollout_id, mode=None)
        assert updated.mode is None
        assert updated.resources_id == "rs-1" and updated.metadata == {"a": 1} and updated.input == "x"

    async def test_final_status_sets_end_time(self, store: LightningStore) -> None:
        for status in ("succeeded", "failed", "cancelled"):
            rollout = await store.enqueue_rollout(status)
            updated = await store.update_rollout(rollout.rollout_id, status=status)
            assert updated.end_time is not None and updated.end_time >= updated.start_time
        claimed = await running_rollout(store)
        await anyio.sleep(0.01)
        await store.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status="succeeded")
        done = await store.get_rollout_by_id(claimed.rollout_id)
        assert done is not None and done.end_time is not None and done.end_time > done.start_time


@pytest.mark.anyio
class QueryRolloutsTests:
    """``query_rollouts``: filters, sort, pagination."""

    async def _three_rollouts(self, store: LightningStore) -> List[Rollout]:
        a = await store.enqueue_rollout("a", mode="train")
        b = await store.enqueue_rollout("b", mode=None)
        c = await store.enqueue_rollout("c", mode="val")
        await store.update_rollout(c.rollout_id, status="succeeded")
        return [a, b, c]

    async def test_all_in_insertion_order(self, store: LightningStore) -> None:
        rollouts = await self._three_rollouts(store)
        result = await store.query_rollouts()
        assert rollout_ids(result) == rollout_ids(rollouts)
        assert result.total == 3 and result.limit == -1 and result.offset == 0

    async def test_status_filters(self, store: LightningStore) -> None:
        a, b, c = await self._three_rollouts(store)
        assert rollout_ids(await store.query_rollouts(status_in=["queuing"])) == [a.rollout_id, b.rollout_id]
        assert rollout_ids(await store.query_rollouts(status_in=["succeeded"])) == [c.rollout_id]
        assert list(await store.query_rollouts(status_in=[])) == []

    async def test_mode_filters(self, store: LightningStore) -> None:
        a, b, c = await self._three_rollouts(store)
        assert rollout_ids(await store.query_rollouts(mode_in=["train"])) == [a.rollout_id]
        assert rollout_ids(await store.query_rollouts(mode_in=["val", "test"])) == [c.rollout_id]
        assert rollout_ids(await store.query_rollouts(mode_in=[None, "val"])) == [b.rollout_id, c.rollout_id]
        assert list(await store.query_rollouts(mode_in=[])) == []
        page = await store.query_rollouts(mode_in=["train", "val"], sort_by="rollout_id", sort_order="desc", limit=1)
        assert page.total == 2 and rollout_ids(page) == [max(a.rollout_id, c.rollout_id)]
        anded = await store.query_rollouts(mode_in=["train"], status_in=["succeeded"])
        assert list(anded) == []
        ored = await store.query_rollouts(mode_in=["train"], status_in=["succeeded"], filter_logic="or")
        assert rollout_ids(ored) == [a.rollout_id, c.rollout_id]

    async def test_start_time_from(self, store: LightningStore) -> None:
        a, b, c = await self._three_rollouts(store)
        await anyio.sleep(0.01)
        d = await store.enqueue_rollout("d")
        assert d.start_time > c.start_time
        times = {r.rollout_id: r.start_time for r in (a, b, c, d)}
        for cut in sorted(set(times.values())):
            later = [rid for rid, started in times.items() if started >= cut]
            assert rollout_ids(await store.query_rollouts(start_time_from=cut)) == later
        assert list(await store.query_rollouts(start_time_from=d.start_time + 1)) == []
        # ANDed with the other filters, under "or" too; pages by start time, ties in insertion order
        ored = await store.query_rollouts(start_time_from=d.start_time, status_in=["succeeded"], filter_logic="or")
        assert rollout_ids(ored) == []
        keyed = sorted((started, index, rid) for index, (rid, started) in enumerate(times.items()))
        later = [rid for started, _, rid in keyed if started >= b.start_time]
        page = await store.query_rollouts(start_time_from=b.start_time, sort_by="start_time", limit=2)
        assert page.total == len(later) and rollout_ids(page) == later[:2]

    async def test_deprecated_aliases(self, store: LightningStore) -> None:
        a, _, c = await self._three_rollouts(store)
        with pytest.warns(DeprecationWarning):
            legacy = await store.query_rollouts(status=["succeeded"])
        assert rollout_ids(legacy) == [c.rollout_id]
        with pytest.warns(DeprecationWarning):
            legacy_ids = await store.query_rollouts(rollout_ids=[a.rollout_id])
        assert rollout_ids(legacy_ids) == [a.rollout_id]
        with pytest.warns(DeprecationWarning):
            both = await store.query_rollouts(status_in=["queuing"], status=["succeeded"])
        assert c.rollout_id not in rollout_ids(both) and a.rollout_id in rollout_ids(both)

    async def test_id_filters_and_logic(self, store: LightningStore) -> None:
        a, b, c = await self._three_rollouts(store)
        assert rollout_ids(await store.query_rollouts(rollout_id_in=[c.rollout_id, a.rollout_id])) == [
            a.rollout_id,
            c.rollout_id,
        ]
        assert rollout_ids(await store.query_rollouts(rollout_id_contains=b.rollout_id[3:])) == [b.rollout_id]
        assert rollout_ids(await store.query_rollouts(rollout_id_contains="ro-")) == rollout_ids([a, b, c])
        anded = await store.query_rollouts(status_in=["succeeded"], rollout_id_in=[a.rollout_id])
        assert list(anded) == []
        ored = await store.query_rollouts(status_in=["succeeded"], rollout_id_in=[a.rollout_id], filter_logic="or")
        assert rollout_ids(ored) == [a.rollout_id, c.rollout_id]

    async def test_returns_latest_attempt(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        queued = await store.enqueue_rollout("q")
        second = await store.start_attempt(claimed.rollout_id)
        by_id = {r.rollout_id: r for r in await store.query_rollouts()}
        assert not isinstance(by_id[queued.rollout_id], AttemptedRollout)
        got = by_id[claimed.rollout_id]
        assert isinstance(got, AttemptedRollout) and got.attempt.attempt_id == second.attempt.attempt_id

    async def test_sort_and_nulls(self, store: LightningStore) -> None:
        a, b, c = await self._three_rollouts(store)
        asc = await store.query_rollouts(sort_by="mode")
        assert rollout_ids(asc) == [b.rollout_id, a.rollout_id, c.rollout_id]
        desc = await store.query_rollouts(sort_by="mode", sort_order="desc")
        assert rollout_ids(desc) == [c.rollout_id, a.rollout_id, b.rollout_id]
        by_time = await store.query_rollouts(sort_by="start_time", sort_order="desc")
        assert [r.start_time for r in by_time] == sorted((r.start_time for r in by_time), reverse=True)

    async def test_pagination(self, store: LightningStore) -> None:
        created = [await store.enqueue_rollout(i) for i in range(5)]
        page = await store.query_rollouts(limit=2, offset=1)
        assert rollout_ids(page) == rollout_ids(created[1:3])
        assert (page.limit, page.offset, page.total) == (2, 1, 5)
        assert list(await store.query_rollouts(offset=10)) == []
        empty = await store.query_rollouts(limit=0)
        assert list(empty) == [] and empty.total == 5
        filtered = await store.query_rollouts(rollout_id_in=rollout_ids(created[:3]), limit=1, offset=2)
        assert rollout_ids(filtered) == [created[2].rollout_id] and filtered.total == 3

    async def test_paginated_result_is_a_sequence(self, store: LightningStore) -> None:
        created = [await store.enqueue_rollout(i) for i in range(3)]
        result = await store.query_rollouts()
        assert isinstance(result, PaginatedResult)
        assert len(result) == 3 and result[0].rollout_id == created[0].rollout_id
        assert rollout_ids(result[1:]) == rollout_ids(created[1:]) and rollout_ids(list(result)) == rollout_ids(created)
