"""Values a store can keep: deep nesting and wide integers are refused up front, and nothing stored turns unreadable."""

from __future__ import annotations

from typing import Any, List

import pytest

from agentlightning.store.base import LightningStore
from agentlightning.store.errors import InvalidRequestError
from agentlightning.store.limits import MAX_JSON_DEPTH, MAX_JSON_INT, MAX_SEQUENCE_ID, MIN_JSON_INT
from agentlightning.types.core import EnqueueRolloutRequest

from ._support import make_span, running_rollout

__all__ = ["StorableValueTests", "nested"]


def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` levels of containers (lists and dicts, alternating) around ``leaf``."""
    value: Any = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


async def _everything_readable(store: LightningStore, rollout_id: str) -> None:
    """Every listing a poisoned value used to break still answers."""
    await store.query_rollouts()
    await store.query_attempts(rollout_id)
    await store.query_spans(rollout_id)
    await store.query_resources()
    await store.query_workers()
    await store.get_latest_resources()
    await store.dequeue_rollout()


@pytest.mark.anyio
class StorableValueTests:
    """What a store accepts it reads back exactly; what it could not, it refuses with InvalidRequestError."""

    async def test_deepest_accepted_values_read_back(self, store: LightningStore) -> None:
        deep = nested(MAX_JSON_DEPTH)
        claimed = await running_rollout(store, metadata={"deep": nested(MAX_JSON_DEPTH - 1)})
        rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
        await store.add_span(make_span(rid, aid, 1, attributes={"deep": nested(MAX_JSON_DEPTH - 1)}))
        await store.enqueue_rollout(deep)
        await store.update_worker("w-deep", {"deep": nested(MAX_JSON_DEPTH - 1)})
        spans = await store.query_spans(rid)
        assert spans[0].attributes["deep"] == nested(MAX_JSON_DEPTH - 1)
        rollouts = await store.query_rollouts()
        assert [r.input for r in rollouts][-1] == deep
        worker = await store.get_worker_by_id("w-deep")
        assert worker is not None and worker.heartbeat_stats == {"deep": nested(MAX_JSON_DEPTH - 1)}
        await _everything_readable(store, rid)

    @pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 600])
    async def test_too_deep_values_refused_and_store_stays_readable(self, store: LightningStore, depth: int) -> None:
        claimed = await running_rollout(store)
        rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
        deep = nested(depth)
        attempts: List[Any] = [
            lambda: store.add_span(make_span(rid, aid, 1, attributes={"deep": deep})),
            lambda: store.add_many_spans([make_span(rid, aid, 2), make_span(rid, aid, 3, attributes={"d": deep})]),
            lambda: store.enqueue_rollout(deep),
            lambda: store.enqueue_many_rollouts([EnqueueRolloutRequest(input=1), EnqueueRolloutRequest(input=deep)]),
            lambda: store.start_rollout(deep),
            lambda: store.update_rollout(rid, input=deep),
            lambda: store.update_rollout(rid, metadata={"deep": deep}),
            lambda: store.update_attempt(rid, aid, metadata={"deep": deep}),
            lambda: store.update_worker("w-1", {"deep": deep}),
        ]
        for attempt in attempts:
            with pytest.raises(InvalidRequestError, match="nested"):
                await attempt()
        assert len(await store.query_spans(rid)) == 0, "a refused batch stores none of its spans"
        assert len(await store.query_rollouts()) == 1
        await _everything_readable(store, rid)

    async def test_integers_read_back_exactly_or_are_refused(self, store: LightningStore) -> None:
        claimed = await running_rollout(store)
        rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
        edges = {"max": MAX_JSON_INT, "min": MIN_JSON_INT, "nested": [MAX_JSON_INT]}
        await store.add_span(make_span(rid, aid, 1, attributes=edges))
        await store.enqueue_rollout({"n": MAX_JSON_INT})
        [span] = await store.query_spans(rid)
        assert span.attributes == edges and type(span.attributes["max"]) is int
        rollouts = await store.query_rollouts()
        assert rollouts[-1].input == {"n": MAX_JSON_INT} and type(rollouts[-1].input["n"]) is int
        for wide in (MAX_JSON_INT + 1, MIN_JSON_INT - 1, 10**30):
            with pytest.raises(InvalidRequestError, match="integer"):
                await store.add_span(make_span(rid, aid, 2, attributes={"n": wide}))
            with pytest.raises(InvalidRequestError, match="integer"):
                await store.enqueue_rollout({"n": [wide]})
        with pytest.raises(InvalidRequestError, match="sequence_id"):
            await store.add_span(make_span(rid, aid, 2**63))
        await store.add_span(make_span(rid, aid, MAX_SEQUENCE_ID))
        assert await store.get_next_span_sequence_id(rid, aid) == MAX_SEQUENCE_ID + 1
        await _everything_readable(store, rid)
