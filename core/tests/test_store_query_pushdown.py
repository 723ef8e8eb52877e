"""Queries answered by the backend (``select``/``count`` pushed into SQL or an index) against the engine's Python path.

Each example stores random rollouts, attempts, spans (with tied sequence ids), workers and resources in a real
SQLite file or the memory backend, then runs random queries twice over the same data: through the store as is, and
through the same backend with ``select``/``count`` hidden (what a third-party backend without them gets). Items,
their order and the totals must be identical.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

import anyio
import attrs
import pytest
from agentlightning.store.backend import WithoutQueryPushdown
from agentlightning.store.engine import EngineLightningStore
from agentlightning.store.query import Condition, Sort, Where
from agentlightning.testing.store import make_span
from agentlightning.types.core import ROLLOUT_STATUSES
from agentlightning.types.tracer import Span
from agentlightning_memory.backend import MemoryBackend
from agentlightning_sqlite import SqliteBackend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T = TypeVar("T")

EXAMPLES = int(os.environ.get("AGL_QUERY_EXAMPLES", "40"))
BACKENDS = ("memory", "sqlite")
SPAN_IDS = ["s1", "s2", "s12", "x", "xs"]
SPAN_NAMES = ["llm", "tool", "llm.call", "agent"]
NAMED_IDS = ["w-a", "w-b", "ab", "b", "w-ab"]
MODES = ["train", None, "val", "train", "test"]


def _span(rollout_id: str, attempt_id: str, sequence_id: int, span_id: str, name: str, parent: Optional[str]) -> Span:
    """The suite's span, with start times that tie (and are missing) across sequence ids."""
    span = make_span(
        rollout_id,
        attempt_id,
        sequence_id,
        span_id=span_id,
        trace_id=f"{sequence_id:032x}",
        parent_id=parent,
        name=name,
        attributes={"n": sequence_id},
    )
    return attrs.evolve(span, start_time=float(sequence_id % 3) if sequence_id % 4 else None, end_time=None)


def _backend(kind: str, directory: Path) -> Any:
    return MemoryBackend() if kind == "memory" else SqliteBackend(directory / "store.db")


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@st.composite
def datasets(draw: st.DrawFn) -> Dict[str, Any]:
    n = draw(st.integers(0, 12))
    return {
        "statuses": draw(st.lists(st.sampled_from(ROLLOUT_STATUSES), min_size=n, max_size=n)),
        "started": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "workers": draw(st.lists(st.sampled_from(NAMED_IDS), max_size=4)),
        "resources": draw(st.lists(st.sampled_from(NAMED_IDS), max_size=4)),
        "spans": draw(
            st.lists(
                st.tuples(
                    st.booleans(),  # second attempt
                    st.integers(1, 4),  # sequence id: ties on purpose
                    st.sampled_from(SPAN_IDS),
                    st.sampled_from(SPAN_NAMES),
                    st.one_of(st.none(), st.sampled_from(SPAN_IDS)),
                ),
                max_size=14,
            )
        ),
    }


async def _fill(store: EngineLightningStore, data: Dict[str, Any]) -> Dict[str, Any]:
    ids: List[str] = []
    for status, started in zip(data["statuses"], data["started"], strict=True):
        if started:
            rollout = (await store.start_rollout({"q": len(ids)}, worker_id=f"w-{len(ids) % 2}")).as_rollout()
        else:
            rollout = await store.enqueue_rollout({"q": len(ids)}, mode=MODES[len(ids) % len(MODES)])
        if status != rollout.status:
            await store.update_rollout(rollout.rollout_id, status=status)
        ids.append(rollout.rollout_id)
    for worker_id in data["workers"]:
        await store.update_worker(worker_id)
    for resources_id in data["resources"]:
        await store.update_resources(resources_id, {})
    attempts: Tuple[str, ...] = ()
    if data["spans"]:
        # spans go to one rollout with two attempts, and one span to another rollout
        target = (await store.start_rollout({"spans": True})).as_rollout().rollout_id
        first = (await store.get_latest_attempt(target)).attempt_id  # type: ignore[union-attr]
        second = (await store.start_attempt(target)).attempt.attempt_id
        attempts = (first, second)
        other = (await store.start_rollout({"other": True})).attempt
        await store.add_span(_span(other.rollout_id, other.attempt_id, 1, "s1", "llm", None))
        for on_second, seq, span_id, name, parent in data["spans"]:
            attempt_id = attempts[on_second]
            await store.add_span(_span(target, attempt_id, seq, span_id, name, parent))
        ids.append(target)
    return {"ids": ids, "attempts": attempts}


def _page() -> Any:
    return {
        "limit": st.sampled_from([-1, 0, 1, 2, 5]),
        "offset": st.sampled_from([0, 0, 1, 3, 7]),
        "sort_order": st.sampled_from(["asc", "desc"]),
        "filter_logic": st.sampled_from(["and", "or"]),
    }


def _rollout_query(ids: List[str], starts: List[float]) -> Any:
    known = st.sampled_from(ids) if ids else st.just("ro-missing")
    started = st.sampled_from(starts) if starts else st.just(0.0)
    return st.fixed_dictionaries(
        {
            "start_time_from": st.one_of(st.none(), started, st.floats(allow_nan=False)),
            "status_in": st.one_of(st.none(), st.lists(st.sampled_from(ROLLOUT_STATUSES), max_size=3)),
            "rollout_id_in": st.one_of(st.none(), st.lists(st.one_of(known, st.just("ro-missing")), max_size=3)),
            "rollout_id_contains": st.one_of(st.none(), st.sampled_from(["ro-", "RO-", "a", "A", "0", ""]), known),
            "mode_in": st.one_of(st.none(), st.lists(st.sampled_from(MODES), max_size=3)),
            "sort_by": st.sampled_from(
                [None, "rollout_id", "status", "start_time", "start_time", "end_time", "mode", "resources_id"]
            ),
            **_page(),
        }
    )


def _span_query(attempts: Tuple[str, ...]) -> Any:
    # few filters at a time, mostly on columns: most queries are then ones the backend can answer itself
    keys = ["span_id", "span_id_contains"] * 3 + ["name", "name_contains", "parent_id", "trace_id_contains"]
    filters = st.dictionaries(
        st.sampled_from(keys), st.sampled_from([*SPAN_IDS, *SPAN_NAMES, "S", "1", ".", ""]), max_size=2
    )
    return st.tuples(
        filters,
        st.fixed_dictionaries(
            {
                "attempt_id": st.sampled_from([None, "latest", "at-missing", *attempts]),
                "sort_by": st.sampled_from([None, "sequence_id"] * 2 + ["span_id", "name", "start_time", "parent_id"]),
                **_page(),
            }
        ),
    ).map(lambda parts: {**parts[0], **parts[1]})


def _named_query(field: str) -> Any:
    return st.fixed_dictionaries(
        {
            f"{field}_contains": st.one_of(st.none(), st.sampled_from(["w-", "W-", "b", "a", ""])),
            "sort_by": st.sampled_from([None, field]),
            **{k: v for k, v in _page().items() if k != "filter_logic"},
        }
    )


async def _answer(call: Callable[[], Any]) -> Any:
    """A query's result (items and total) or the type and text of what it raised."""
    try:
        page = await call()
    except Exception as exc:  # noqa: BLE001 - both paths must fail alike
        return ("raised", type(exc).__name__, str(exc))
    return (page.items, page.total, page.limit, page.offset)


@pytest.mark.parametrize("backend_kind", BACKENDS)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=datasets(), draw=st.data())
def test_pushed_down_queries_answer_like_the_python_path(
    backend_kind: str, workdir: Path, data: Dict[str, Any], draw: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory(dir=workdir) as directory:
        backend = _backend(backend_kind, Path(directory))
        pushed = EngineLightningStore(backend, watchdog_interval=None, scan_debounce_seconds=3600)
        python = EngineLightningStore(WithoutQueryPushdown(backend), watchdog_interval=None, scan_debounce_seconds=3600)

        async def main() -> None:
            made = await _fill(pushed, data)
            ids: List[str] = made["ids"]
            starts = [r.start_time for r in await pushed.query_rollouts()]
            queries = st.lists(_rollout_query(ids, starts), min_size=1, max_size=6)
            for query in draw.draw(queries, label="rollout queries"):
                assert await _answer(lambda: pushed.query_rollouts(**query)) == await _answer(
                    lambda: python.query_rollouts(**query)
                ), query
            rollout_ids = [*ids[-1:], "ro-missing"]
            span_queries = st.lists(_span_query(made["attempts"]), min_size=1, max_size=8)
            for query in draw.draw(span_queries, label="span queries"):
                rollout_id = draw.draw(st.sampled_from(rollout_ids), label="span rollout")
                assert await _answer(lambda: pushed.query_spans(rollout_id, **query)) == await _answer(
                    lambda: python.query_spans(rollout_id, **query)
                ), query
            for query in draw.draw(st.lists(_named_query("worker_id"), max_size=3), label="worker queries"):
                status_in = draw.draw(st.one_of(st.none(), st.lists(st.sampled_from(["idle", "busy", "unknown"]))))
                assert await _answer(lambda: pushed.query_workers(status_in=status_in, **query)) == await _answer(
                    lambda: python.query_workers(status_in=status_in, **query)
                ), query
            for query in draw.draw(st.lists(_named_query("resources_id"), max_size=3), label="resources queries"):
                exact = draw.draw(st.one_of(st.none(), st.sampled_from(NAMED_IDS)), label="resources_id")
                assert await _answer(lambda: pushed.query_resources(resources_id=exact, **query)) == await _answer(
                    lambda: python.query_resources(resources_id=exact, **query)
                ), query
            if ids:
                for limit in (-1, 1):
                    assert await _answer(lambda: pushed.query_attempts(ids[0], limit=limit)) == await _answer(
                        lambda: python.query_attempts(ids[0], limit=limit)
                    )

        try:
            anyio.run(main)
        finally:
            backend.close()


# -- the push-down answers what it should (and declines what it cannot express) -------------------------------------


def _where(*must: Condition, pooled: Tuple[Condition, ...] = (), aggregate: str = "and") -> Where:
    return Where(pooled=pooled, must=must, aggregate=aggregate)


@pytest.mark.parametrize("backend_kind", BACKENDS)
def test_status_counts_and_pages_are_answered_by_the_backend(backend_kind: str, workdir: Path) -> None:
    backend = _backend(backend_kind, workdir)
    store = EngineLightningStore(backend, watchdog_interval=None)

    async def main() -> List[str]:
        made = [await store.enqueue_rollout({"i": i}, mode="val" if i == 1 else None) for i in range(6)]
        for rollout in made[::2]:
            await store.update_rollout(rollout.rollout_id, status="succeeded")
        return [r.rollout_id for r in made]

    try:
        ids = anyio.run(main)
        done = Condition("status", "within", ["succeeded", "failed"])
        assert backend.run_sync(lambda tx: tx.count("rollouts", _where(done)), write=False) == 3
        rows, total = backend.run_sync(lambda tx: tx.select("rollouts", _where(done), None, 2, 1), write=False)
        assert [r.rollout_id for r in rows] == [ids[2], ids[4]] and total == 3
        rows, total = backend.run_sync(
            lambda tx: tx.select("rollouts", _where(), Sort("rollout_id", "desc"), 1, 0), write=False
        )
        if backend_kind == "sqlite":  # memory sorts in Python over its objects: same answer, no index needed
            assert [r.rollout_id for r in rows] == [max(ids)] and total == 6
        # the mode has no column: SQL reads it from the stored record
        held_out = Condition("mode", "within", ["val", "test"])
        assert backend.run_sync(lambda tx: tx.count("rollouts", _where(held_out)), write=False) == 1
        rows, total = backend.run_sync(lambda tx: tx.select("rollouts", _where(held_out), None, -1, 0), write=False)
        assert [r.rollout_id for r in rows] == [ids[1]] and total == 1
        # a filter on a field without a column or index is declined, not guessed
        odd = Condition("metadata", "contains", "x")
        assert backend.run_sync(lambda tx: tx.count("rollouts", _where(odd, done)), write=False) in (None, 0)
    finally:
        backend.close()


@pytest.mark.parametrize("backend_kind", BACKENDS)
def test_a_page_of_spans_is_answered_by_the_backend(backend_kind: str, workdir: Path) -> None:
    backend = _backend(backend_kind, workdir)
    store = EngineLightningStore(backend, watchdog_interval=None)

    async def main() -> Tuple[str, str]:
        attempted = await store.start_rollout({"q": 1})
        rid, aid = attempted.rollout_id, attempted.attempt.attempt_id
        spans = [_span(rid, aid, 10 - i // 2, f"s{i}", "reward" if i == 3 else "llm", None) for i in range(10)]
        await store.add_many_spans(spans)
        return rid, aid

    try:
        rid, aid = anyio.run(main)
        scope = (Condition("rollout_id", "exact", rid), Condition("attempt_id", "exact", aid))
        rows, total = backend.run_sync(
            lambda tx: tx.select("spans", _where(*scope), Sort("sequence_id", "desc"), 3, 0), write=False
        )
        # ties (two spans per sequence id) keep insertion order in both directions
        assert [s.span_id for s in rows] == ["s0", "s1", "s2"] and total == 10
        rows, total = backend.run_sync(lambda tx: tx.select("spans", _where(*scope), None, 3, 0), write=False)
        assert [s.span_id for s in rows] == ["s8", "s9", "s6"] and total == 10
        assert backend.run_sync(lambda tx: tx.count("spans", _where(*scope)), write=False) == 10
        # the name has no column: SQL reads it from the stored span (memory leaves such a filter to the engine)
        named = Condition("name", "exact", "reward")
        answer = backend.run_sync(lambda tx: tx.select("spans", _where(*scope, named), None, -1, 0), write=False)
        if backend_kind == "sqlite":
            assert answer is not None
            assert [s.span_id for s in answer[0]] == ["s3"] and answer[1] == 1
        # unscoped span queries are never pushed down
        assert backend.run_sync(lambda tx: tx.select("spans", _where(), None, 3, 0), write=False) is None
    finally:
        backend.close()
