"""Export reads rollouts by key (start time, then insertion order), never by offset: every matching rollout exactly
once, in a fixed order, whatever the page size, ties of start times, or rollouts added or changing status while the
export runs; on memory and SQLite stores, and through ``query_rollouts(start_time_from=...)`` of any store."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import anyio
import pytest
from agentlightning.store.engine import EngineLightningStore
from agentlightning.store.errors import InvalidRequestError
from agentlightning.training import ExportFilter, iter_rollout_traces
from agentlightning.types.core import Rollout
from agentlightning_memory.backend import MemoryBackend
from agentlightning_sqlite import SqliteBackend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BACKENDS = ("memory", "sqlite")
_FILES = itertools.count()
STATUSES = ("queuing", "running", "succeeded", "failed")


def _store(kind: str, directory: Path) -> EngineLightningStore:
    backend = MemoryBackend() if kind == "memory" else SqliteBackend(directory / f"paging-{next(_FILES)}.db")
    return EngineLightningStore(backend, watchdog_interval=None, scan_debounce_seconds=3600)


def _rollouts(specs: List[Tuple[int, str]], first: int = 0) -> List[Rollout]:
    """Rollouts with the given (start time, status), ids numbered from ``first``; start times repeat and need not
    grow with insertion order (as after an import)."""
    return [
        Rollout(rollout_id=f"ro-{first + i:05d}", input=i, start_time=float(t), status=status)  # type: ignore[arg-type]
        for i, (t, status) in enumerate(specs)
    ]


async def _insert(store: EngineLightningStore, rollouts: List[Rollout]) -> None:
    await store.backend.run(lambda tx: tx.insert_rollouts(rollouts), write=True)


def _expected(rollouts: List[Rollout], selection: ExportFilter) -> List[str]:
    """The reference answer: matching rollouts by (start time, insertion order)."""
    keyed = sorted((r.start_time, i, r) for i, r in enumerate(rollouts))
    return [
        r.rollout_id
        for _, _, r in keyed
        if (selection.status_in is None or r.status in selection.status_in)
        and (selection.since is None or r.start_time >= selection.since)
    ]


class _Spy:
    """A store whose ``query_rollouts`` calls are recorded."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.calls: List[Dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def query_rollouts(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return await self._store.query_rollouts(**kwargs)


SPECS = st.lists(st.tuples(st.integers(0, 6), st.sampled_from(STATUSES)), max_size=30)


@pytest.mark.parametrize("kind", BACKENDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=SPECS,
    page_size=st.integers(1, 5),
    statuses=st.one_of(st.none(), st.lists(st.sampled_from(STATUSES), min_size=1, max_size=2, unique=True)),
    since=st.one_of(st.none(), st.integers(0, 7)),
)
def test_export_reads_every_matching_rollout_once_by_key(
    kind: str, specs: List[Tuple[int, str]], page_size: int, statuses: Optional[List[str]], since: Optional[int],
    tmp_path: Path,
) -> None:  # fmt: skip
    selection = ExportFilter(status_in=statuses, since=since)
    rollouts = _rollouts(specs)

    async def main() -> Tuple[List[str], int, List[Dict[str, Any]]]:
        store = _store(kind, tmp_path)
        spy = _Spy(store)
        totals: List[int] = []
        try:
            await _insert(store, rollouts)
            got = [
                t.rollout.rollout_id
                async for t in iter_rollout_traces(spy, selection, page_size=page_size, on_total=totals.append)
            ]
            return got, totals[0], spy.calls
        finally:
            await store.close()

    got, total, calls = anyio.run(main)
    expected = _expected(rollouts, selection)
    assert got == expected
    assert total == len(expected)  # since is answered by the store: the progress bar's total is exact
    assert all(call.get("offset", 0) == 0 and call["sort_by"] == "start_time" for call in calls)
    # a page's start is its key, not the count of rollouts before it
    assert all(call["start_time_from"] == since for call in calls[:1])


@pytest.mark.parametrize("kind", BACKENDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=SPECS.filter(bool),
    page_size=st.integers(1, 4),
    changes=st.lists(
        st.tuples(st.integers(1, 30), st.booleans(), st.integers(0, 29), st.sampled_from(STATUSES)), max_size=12
    ),
)
def test_rollouts_added_or_changed_during_the_export_leave_no_gaps_or_duplicates(
    kind: str, specs: List[Tuple[int, str]], page_size: int, changes: List[Tuple[int, bool, int, str]],
    tmp_path: Path,
) -> None:  # fmt: skip
    """Between rollouts read, the export's store gets new rollouts (start times at or after every stored one, as the
    store's clock gives them) and status changes. Every rollout that matched at the start and still matches at the
    end is read exactly once; nothing is read twice."""
    selection = ExportFilter(status_in=["succeeded", "running"])
    rollouts = _rollouts(specs)
    latest = max(t for t, _ in specs)

    async def main() -> Tuple[List[str], List[str], List[str]]:
        store = _store(kind, tmp_path)
        try:
            await _insert(store, rollouts)
            before = _expected(rollouts, selection)
            got: List[str] = []
            added = 0
            async for trace in iter_rollout_traces(store, selection, page_size=page_size):
                got.append(trace.rollout.rollout_id)
                for step, new, index, status in changes:
                    if step != len(got):
                        continue
                    if new:
                        await _insert(store, _rollouts([(latest + index % 3, status)], first=1000 + added))
                        added += 1
                    else:
                        target = rollouts[index % len(rollouts)].rollout_id
                        await store.update_rollout(target, status=status)  # type: ignore[arg-type]
            after = [r.rollout_id for r in await store.query_rollouts(status_in=["succeeded", "running"])]
            return got, before, after
        finally:
            await store.close()

    got, before, after = anyio.run(main)
    assert len(got) == len(set(got))
    assert set(before) & set(after) <= set(got)


class _IgnoresStartTime(_Spy):
    """A store that does not know ``start_time_from`` (upstream's server ignores fields it does not know)."""

    async def query_rollouts(self, **kwargs: Any) -> Any:
        kwargs.pop("start_time_from", None)
        return await super().query_rollouts(**kwargs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=SPECS,
    page_size=st.integers(1, 5),
    statuses=st.one_of(st.none(), st.just(["succeeded"])),
    since=st.one_of(st.none(), st.integers(0, 7)),
)
def test_a_store_that_ignores_start_time_from_is_read_by_offset(
    specs: List[Tuple[int, str]], page_size: int, statuses: Optional[List[str]], since: Optional[int], tmp_path: Path
) -> None:
    selection = ExportFilter(status_in=statuses, since=since)
    rollouts = _rollouts(specs)

    async def main() -> List[str]:
        store = _store("memory", tmp_path)
        try:
            await _insert(store, rollouts)
            old = _IgnoresStartTime(store)
            return [t.rollout.rollout_id async for t in iter_rollout_traces(old, selection, page_size=page_size)]
        finally:
            await store.close()

    assert anyio.run(main) == _expected(rollouts, selection)


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_long_run_of_equal_start_times_is_read_once(kind: str, tmp_path: Path) -> None:
    """Rollouts enqueued together share a start time; pages through them skip those already read."""
    rollouts = _rollouts([(5, "succeeded")] * 23 + [(4, "succeeded")] * 3 + [(6, "failed")] * 4)

    async def main() -> List[str]:
        store = _store(kind, tmp_path)
        try:
            await _insert(store, rollouts)
            return [t.rollout.rollout_id async for t in iter_rollout_traces(store, page_size=4)]
        finally:
            await store.close()

    assert anyio.run(main) == _expected(rollouts, ExportFilter())


@pytest.mark.parametrize("value", ["soon", float("nan"), True])
def test_start_time_from_must_be_a_number(value: Any, tmp_path: Path) -> None:
    async def main() -> None:
        store = _store("memory", tmp_path)
        try:
            with pytest.raises(InvalidRequestError, match="start_time_from must be a number"):
                await store.query_rollouts(start_time_from=value)
        finally:
            await store.close()

    anyio.run(main)
