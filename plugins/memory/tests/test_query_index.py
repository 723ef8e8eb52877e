"""The memory backend's query indexes: per-status sorted positions and pages of merged position lists."""

from __future__ import annotations

import heapq
import math
from typing import List

from agentlightning.store.query import AT_LEAST, Condition, Sort, Where
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


START_TIMES = st.one_of(st.integers(0, 5).map(float), st.just(math.nan), st.just(math.inf))


@given(
    starts=st.lists(st.tuples(START_TIMES, st.sampled_from(["queuing", "succeeded"])), min_size=1, max_size=25),
    updates=st.lists(st.tuples(st.integers(0, 24), START_TIMES), max_size=10),
    bound=st.integers(-1, 6).map(float),
    statuses=st.one_of(st.none(), st.just(["succeeded"])),
    limit=st.sampled_from([-1, 0, 1, 3]),
    offset=st.integers(0, 5),
)
def test_pages_by_start_time_follow_inserts_and_start_time_changes(
    starts: List[tuple], updates: List[tuple], bound: float, statuses: List[str], limit: int, offset: int
) -> None:
    """A page read by key (``at_least`` on the start time, sorted by it) from the start-time index equals filtering
    and sorting every rollout, also after a rollout's start time changed; a start time that is no number (NaN)
    never matches."""
    backend = MemoryBackend()
    current = [
        Rollout(rollout_id=f"ro-{i}", input=None, start_time=t, status=status)  # type: ignore[arg-type]
        for i, (t, status) in enumerate(starts)
    ]
    backend.insert_rollouts(current)
    for index, started in updates:
        if index < len(current):
            current[index] = Rollout(rollout_id=f"ro-{index}", input=None, start_time=started,
                                     status=current[index].status)  # fmt: skip
            backend.update_rollout(current[index])
    must = [Condition("start_time", AT_LEAST, bound)]
    if statuses is not None:
        must.append(Condition("status", "within", statuses))
    where = Where(must=tuple(must))
    expected = sorted((r for r in current if where.test(r)), key=lambda r: r.start_time)  # stable: insertion order
    end = None if limit == -1 else offset + limit
    assert backend.select("rollouts", where, Sort("start_time", "asc"), limit, offset) == (
        expected[offset:end],
        len(expected),
    )
