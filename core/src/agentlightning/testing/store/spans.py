"""Spans: sequence ids, adding spans (heartbeats) and ``query_spans``."""

from __future__ import annotations

import functools
import time
from typing import Any, Dict

import anyio
import pytest

from agentlightning.store.base import LightningStore
from agentlightning.store.errors import NotFoundError
from agentlightning.types.core import (
    AttemptedRollout,
    RolloutConfig,
)

from ._support import (
    make_otel_span,
    make_span,
    running_rollout,
)

__all__ = ["SpanSequenceTests", "SpanTests", "QuerySpansTests"]


@pytest.mark.anyio
class SpanSequenceTests:
    """Span sequence-id allocation."""

    async def test_allocation_is_per_rollout_and_shared(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
        first = await store.add_otel_span(rid, aid, make_otel_span("one"))
        assert first is not None and first.sequence_id == 1
        assert await store.get_next_span_sequence_id(rid, aid) == 2
        second = await store.add_otel_span(rid, aid, make_otel_span("two"))
        assert second is not None and second.sequence_id == 3
        assert await store.get_next_span_sequence_id(rid, "at-unknown") == 4
        retry = await store.start_attempt(rid)
        assert await store.get_next_span_sequence_id(rid, retry.attempt.attempt_id) == 5

    async def test_bulk_allocation(self, store: LightningStore) -> None:
        pairs = [("ro-A", "a1"), ("ro-B", "b1"), ("ro-A", "a2"), ("ro-A", "a1")]
        assert list(await store.get_many_span_sequence_ids(pairs)) == [1, 1, 2, 3]
        assert await store.get_next_span_sequence_id("ro-A", "a1") == 4
        assert await store.get_next_span_sequence_id("ro-B", "b1") == 2

    async def test_explicit_sequence_raises_counter(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
        stored = await store.add_otel_span(rid, aid, make_otel_span(), sequence_id=100)
        assert stored is not None and stored.sequence_id == 100
        assert await store.get_next_span_sequence_id(rid, aid) == 101
        await store.add_span(make_span(rid, aid, 150))
        assert await store.get_next_span_sequence_id(rid, aid) == 151
        await store.add_many_spans([make_span(rid, aid, 200), make_span(rid, aid, 160)])
        assert await store.get_next_span_sequence_id(rid, aid) == 201
        await store.add_span(make_span(rid, aid, 5))
        assert await store.get_next_span_sequence_id(rid, aid) == 202


@pytest.mark.anyio
class SpanTests:
    """``add_span``, ``add_otel_span``, ``add_many_spans``: duplicates and heartbeats."""

    async def test_add_span_returns_equal_span_and_rejects_duplicates(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        span = make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1, attributes={"a": [1, 2], "b": "x"})
        stored = await store.add_span(span)
        assert stored == span
        assert await store.add_span(span) is None
        spans = await store.query_spans(claimed.rollout_id)
        assert list(spans) == [span]

    async def test_add_otel_span(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        otel = make_otel_span("converted")
        stored = await store.add_otel_span(claimed.rollout_id, claimed.attempt.attempt_id, otel)
        assert stored is not None
        assert stored.name == "converted" and stored.attributes == {"k": "v"}
        assert stored.rollout_id == claimed.rollout_id and stored.attempt_id == claimed.attempt.attempt_id
        assert await store.add_otel_span(claimed.rollout_id, claimed.attempt.attempt_id, otel) is None
        assert (await store.query_spans(claimed.rollout_id)).total == 1

    async def test_add_many_spans_skips_duplicates(self, store: LightningStore) -> None:
        one = await running_rollout(store)
        two = await running_rollout(store)
        retry = await store.start_attempt(one.rollout_id)
        a = make_span(one.rollout_id, one.attempt.attempt_id, 1)
        b = make_span(two.rollout_id, two.attempt.attempt_id, 1)
        c = make_span(one.rollout_id, retry.attempt.attempt_id, 2)
        stored = await store.add_many_spans([a, b, a, c])
        assert len(stored) == 3 and {s.span_id for s in stored} == {a.span_id, b.span_id, c.span_id}
        assert list(await store.add_many_spans([a])) == []
        assert (await store.query_spans(one.rollout_id)).total == 2
        assert (await store.query_spans(two.rollout_id)).total == 1

    async def test_same_span_id_in_other_attempt_is_not_a_duplicate(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        retry = await store.start_attempt(claimed.rollout_id)
        first = make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1, span_id="00000000000000aa")
        second = make_span(claimed.rollout_id, retry.attempt.attempt_id, 2, span_id="00000000000000aa")
        assert await store.add_span(first) is not None
        assert await store.add_span(second) is not None

    async def test_unknown_rollout_or_attempt(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        with pytest.raises(NotFoundError, match="Rollout nonexistent not found"):
            await store.add_span(make_span("nonexistent", claimed.attempt.attempt_id, 1))
        with pytest.raises(NotFoundError, match=f"Attempt attempt-missing not found for rollout {claimed.rollout_id}"):
            await store.add_span(make_span(claimed.rollout_id, "attempt-missing", 1))
        with pytest.raises(NotFoundError, match="Rollout nonexistent not found"):
            await store.add_otel_span("nonexistent", "at-x", make_otel_span())
        with pytest.raises(NotFoundError):
            await store.add_many_spans([make_span("nonexistent", "at-x", 1)])

    async def test_span_is_a_heartbeat(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        before = time.time()
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        attempt = await store.get_latest_attempt(claimed.rollout_id)
        assert attempt is not None and attempt.status == "running"
        assert attempt.last_heartbeat_time is not None and attempt.last_heartbeat_time >= before - 1e-3
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "running"
        await anyio.sleep(0.01)
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 2))
        later = await store.get_latest_attempt(claimed.rollout_id)
        assert later is not None and later.last_heartbeat_time is not None
        assert later.last_heartbeat_time > attempt.last_heartbeat_time

    async def test_span_revives_unresponsive_attempt(self, store: LightningStore) -> None:
        config = RolloutConfig(max_attempts=2, retry_condition=["unresponsive"])
        claimed = await running_rollout(store, config=config)
        await store.update_attempt(claimed.rollout_id, "latest", status="unresponsive")
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "requeuing"
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        attempt = await store.get_latest_attempt(claimed.rollout_id)
        assert attempt is not None and attempt.status == "running"
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "running"
        assert await store.dequeue_rollout() is None, "the stale queue entry of a revived rollout must be skipped"
        await store.update_attempt(claimed.rollout_id, "latest", status="succeeded")
        assert [a.sequence_id for a in await store.query_attempts(claimed.rollout_id)] == [1]

    async def test_span_on_final_attempt_keeps_status(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        await store.update_attempt(claimed.rollout_id, "latest", status="timeout")
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        attempt = await store.get_latest_attempt(claimed.rollout_id)
        assert attempt is not None and attempt.status == "timeout" and attempt.last_heartbeat_time is not None
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert rollout is not None and rollout.status == "failed"

    async def test_span_on_old_attempt_leaves_rollout(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        retry = await store.start_attempt(claimed.rollout_id)
        await store.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
        old = (await store.query_attempts(claimed.rollout_id))[0]
        assert old.status == "running"
        rollout = await store.get_rollout_by_id(claimed.rollout_id)
        assert isinstance(rollout, AttemptedRollout) and rollout.status == "preparing"
        assert rollout.attempt.attempt_id == retry.attempt.attempt_id and rollout.attempt.status == "preparing"

    async def test_heartbeat_keeps_concurrent_metadata(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(store.update_attempt, rid, aid, metadata={"keep": True}))
            tg.start_soon(store.add_span, make_span(rid, aid, 1))
        attempt = await store.get_latest_attempt(rid)
        assert attempt is not None and attempt.metadata == {"keep": True} and attempt.status == "running"


@pytest.mark.anyio
class QuerySpansTests:
    """``query_spans``: scopes, filters, sort, pagination."""

    async def _span_setup(self, store: LightningStore) -> Dict[str, Any]:
        claimed = await running_rollout(store)
        rid, first = claimed.rollout_id, claimed.attempt.attempt_id
        retry = await store.start_attempt(rid)
        second = retry.attempt.attempt_id
        root = make_span(rid, first, 1, name="agent.run", trace_id="a" * 32, span_id="1" * 16)
        child = make_span(rid, first, 2, name="openai.chat.completion", trace_id="a" * 32, parent_id="1" * 16)
        other = make_span(rid, second, 3, name="agentlightning.reward", trace_id="b" * 32, span_id="2" * 16)
        await store.add_many_spans([root, child, other])
        noise = await running_rollout(store)
        noisy = make_span(noise.rollout_id, noise.attempt.attempt_id, 1, name="agent.run", trace_id="a" * 32)
        await store.add_span(noisy)
        return {"rid": rid, "first": first, "second": second, "root": root, "child": child, "other": other}

    async def test_scopes(self, store: LightningStore) -> None:
        s = await self._span_setup(store)
        everything = await store.query_spans(s["rid"])
        assert [x.sequence_id for x in everything] == [1, 2, 3] and everything.total == 3
        assert list(await store.query_spans(s["rid"], s["first"])) == [s["root"], s["child"]]
        assert list(await store.query_spans(s["rid"], "latest")) == [s["other"]]
        assert list(await store.query_spans(s["rid"], "at-unknown")) == []
        assert list(await store.query_spans("ro-unknown")) == []
        queued = await store.enqueue_rollout("no attempts")
        assert list(await store.query_spans(queued.rollout_id, "latest")) == []

    async def test_filters(self, store: LightningStore) -> None:
        s = await self._span_setup(store)
        rid = s["rid"]
        assert [x.span_id for x in await store.query_spans(rid, trace_id="a" * 32)] == [
            s["root"].span_id,
            s["child"].span_id,
        ]
        assert list(await store.query_spans(rid, span_id=s["other"].span_id)) == [s["other"]]
        assert list(await store.query_spans(rid, parent_id_contains="1111")) == [s["child"]]
        assert list(await store.query_spans(rid, parent_id=s["root"].span_id)) == [s["child"]]
        assert list(await store.query_spans(rid, name="agent.run")) == [s["root"]]
        anded = await store.query_spans(rid, trace_id="a" * 32, name_contains="chat")
        assert list(anded) == [s["child"]]
        ored = await store.query_spans(rid, span_id_contains="2222", trace_id_contains="aaaa", filter_logic="or")
        assert [x.sequence_id for x in ored] == [1, 2, 3]
        paged = await store.query_spans(rid, name_contains="a", limit=1, offset=1)
        assert [x.sequence_id for x in paged] == [2] and paged.total == 3

    async def test_or_never_leaks_other_rollouts(self, store: LightningStore) -> None:
        s = await self._span_setup(store)
        ored = await store.query_spans(s["rid"], name="agent.run", trace_id="a" * 32, filter_logic="or")
        assert {x.rollout_id for x in ored} == {s["rid"]}
        assert [x.sequence_id for x in ored] == [1, 2]
        scoped = await store.query_spans(s["rid"], s["second"], trace_id="a" * 32, filter_logic="or")
        assert list(scoped) == []

    async def test_or_without_filters_returns_all(self, store: LightningStore) -> None:
        s = await self._span_setup(store)
        result = await store.query_spans(s["rid"], filter_logic="or")
        assert [x.sequence_id for x in result] == [1, 2, 3] and result.total == 3

    async def test_sort_and_pagination(self, store: LightningStore) -> None:
        s = await self._span_setup(store)
        desc = await store.query_spans(s["rid"], sort_order="desc", offset=1)
        assert [x.sequence_id for x in desc] == [2, 1] and (desc.offset, desc.total) == (1, 3)
        zero = await store.query_spans(s["rid"], limit=0)
        assert list(zero) == [] and zero.total == 3
        by_parent = await store.query_spans(s["rid"], sort_by="parent_id")
        assert by_parent[-1].span_id == s["child"].span_id, "None sorts first in asc"
        by_parent_desc = await store.query_spans(s["rid"], sort_by="parent_id", sort_order="desc")
        assert by_parent_desc[0].span_id == s["child"].span_id
        by_name = await store.query_spans(s["rid"], sort_by="name")
        assert [x.name for x in by_name] == sorted(x.name for x in by_name)
