"""The memory backend's query indexes: per-status sorted positions and pages of merged position lists."""

from __future__ import annotations

import heapq
from typing import List

from agentlightning.store.query import Condition, Where
from agentlightning.types.core import ROLLOUT_STATUSES, Rollout
from agentlightning_memory.backend import MemoryBackend, _merged_page
from hypothesis import given
from hypothesis import strategies as st


@given(
    positions=st.lists(st.integers(0, 200), unique=True, max_size=60),
    lists=st.integers(1, 4),
    offset=st.integers(0, 70),
    limit=st.sampled_from([-1, 0, 1, 3, 25]),
    data=st.data(),
)
def test_merged_page_is_a_slice_of_the_merge(
    positions: List[int], lists: int, offset: int, limit: int, data: st.DataObject
) -> None:
    owner = [data.draw(st.integers(0, lists - 1)) for _ in positions]
    parts = [sorted(p for p, o in zip(positions, owner, strict=True) if o == i) for i in range(lists)]
    merged = list(heapq.merge(*parts))
    assert _merged_page(parts, offset, limit) == merged[offset : None if limit == -1 else offset + limit]


@given(st.lists(st.tuples(st.integers(0, 9), st.sampled_from(ROLLOUT_STATUSES)), max_size=40))
def test_status_counts_and_pages_follow_status_changes(changes: List[tuple]) -> None:
    backend = MemoryBackend()
    rollouts = [Rollout(rollout_id=f"ro-{i}", input=None, start_time=float(i)) for i in range(10)]
    backend.insert_rollouts(rollouts)
    current = {r.rollout_id: r for r in rollouts}
    for index, status in changes:
        rollout = Rollout(rollout_id=f"ro-{index}", input=None, start_time=float(index), status=status)
        backend.update_rollout(rollout)
        current[rollout.rollout_id] = rollout
    for statuses in ([s] for s in ROLLOUT_STATUSES):
        where = Where(must=(Condition("status", "within", statuses),))
        expected = [r for r in current.values() if r.status in statuses]  # insertion order
        assert backend.count("rollouts", where) == len(expected)
        assert backend.select("rollouts", where, None, 3, 1) == (expected[1:4], len(expected))
    both = Where(must=(Condition("status", "within", ["running", "succeeded"]),))
    expected = [r for r in current.values() if r.status in ("running", "succeeded")]
    assert backend.select("rollouts", both, None, -1, 2) == (expected[2:], len(expected))
