"""Each SqliteTransaction method against a real database file, through SqliteBackend.run_sync."""

from __future__ import annotations

from typing import Any, Optional

import attrs
import pytest
from agentlightning.store.errors import InvalidRequestError
from agentlightning.store.query import Condition, Sort, Where
from agentlightning.types.core import AttemptedRollout
from agentlightning_sqlite import SqliteBackend, SqliteTransaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_records import make_attempt, make_resources, make_rollout, make_span, make_worker


def write(backend: SqliteBackend, fn):  # type: ignore[no-untyped-def]
    return backend.run_sync(fn, write=True)


def read(backend: SqliteBackend, fn):  # type: ignore[no-untyped-def]
    return backend.run_sync(fn, write=False)


def test_rollouts_round_trip_in_insertion_order(backend: SqliteBackend) -> None:
    rollouts = [make_rollout(f"ro-{i}", status="queuing" if i % 2 else "running") for i in (3, 1, 2)]
    write(backend, lambda tx: tx.insert_rollouts(rollouts))
    assert read(backend, lambda tx: tx.get_rollout("ro-1")) == rollouts[1]
    assert read(backend, lambda tx: tx.get_rollout("nope")) is None
    assert read(backend, lambda tx: list(tx.iter_rollouts())) == rollouts
    assert read(backend, lambda tx: list(tx.iter_rollouts(status_in=["queuing"]))) == [rollouts[0], rollouts[1]]
    assert read(backend, lambda tx: list(tx.iter_rollouts(rollout_id_in=["ro-2", "ro-3"]))) == [
        rollouts[0],
        rollouts[2],
    ]
    assert read(backend, lambda tx: list(tx.iter_rollouts(status_in=["running"], rollout_id_in=["ro-3"]))) == []
    assert read(backend, lambda tx: tx.count_rollouts()) == 3


def test_insert_existing_rollout_is_value_error_and_rolls_back(backend: SqliteBackend) -> None:
    write(backend, lambda tx: tx.insert_rollouts([make_rollout("a")]))
    with pytest.raises(ValueError):
        write(backend, lambda tx: tx.insert_rollouts([make_rollout("b"), make_rollout("a")]))
    assert read(backend, lambda tx: tx.count_rollouts()) == 1


def test_update_rollout_replaces_and_keeps_order(backend: SqliteBackend) -> None:
    write(backend, lambda tx: tx.insert_rollouts([make_rollout("a"), make_rollout("b")]))
    changed = attrs.evolve(make_rollout("a"), status="succeeded", end_time=5.0, metadata={"m": 1})
    write(backend, lambda tx: tx.update_rollout(changed))
    assert read(backend, lambda tx: tx.get_rollout("a")) == changed
    assert [r.rollout_id for r in read(backend, lambda tx: list(tx.iter_rollouts()))] == ["a", "b"]
    assert read(backend, lambda tx: list(tx.iter_rollouts(status_in=["succeeded"])))[0] == changed
    with pytest.raises(ValueError):
        write(backend, lambda tx: tx.update_rollout(make_rollout("zzz")))


def test_attempted_rollout_round_trips_as_itself(backend: SqliteBackend) -> None:
    attempted = AttemptedRollout.of(make_rollout("a"), make_attempt("a", 1))
    write(backend, lambda tx: tx.insert_rollouts([attempted]))
    assert read(backend, lambda tx: tx.get_rollout("a")) == attempted


def test_attempts(backend: SqliteBackend) -> None:
    attempts = [make_attempt("r1", 2), make_attempt("r1", 1), make_attempt("r2", 1), make_attempt("r1", 3)]
    for a in attempts:
        write(backend, lambda tx, a=a: tx.insert_attempt(a))
    assert read(backend, lambda tx: tx.get_attempt("r1", "r1-at2")) == attempts[0]
    assert read(backend, lambda tx: tx.get_attempt("r1", "missing")) is None
    assert [a.sequence_id for a in read(backend, lambda tx: tx.get_attempts("r1"))] == [1, 2, 3]
    assert read(backend, lambda tx: tx.get_attempts("none")) == []
    latest = read(backend, lambda tx: tx.get_latest_attempts(["r1", "r2", "r3", "r1"]))
    assert latest == {"r1": attempts[3], "r2": attempts[2]}
    done = attrs.evolve(attempts[3], status="succeeded", end_time=9.0)
    write(backend, lambda tx: tx.update_attempt(done))
    assert read(backend, lambda tx: tx.get_latest_attempts(["r1"]))["r1"] == done
    assert read(backend, lambda tx: tx.count_attempts()) == 4
    with pytest.raises(ValueError):
        write(backend, lambda tx: tx.insert_attempt(make_attempt("r1", 1)))
    with pytest.raises(ValueError):
        write(backend, lambda tx: tx.update_attempt(make_attempt("r9", 1)))


def test_latest_attempts_of_many_rollouts(backend: SqliteBackend) -> None:
    ids = [f"r{i}" for i in range(1200)]  # more than one IN (...) chunk
    write(backend, lambda tx: [tx.insert_attempt(make_attempt(r, s)) for r in ids for s in (1, 2)])
    latest = read(backend, lambda tx: tx.get_latest_attempts(ids))
    assert len(latest) == 1200 and all(a.sequence_id == 2 for a in latest.values())


def test_queue_is_fifo_without_duplicates(backend: SqliteBackend) -> None:
    write(backend, lambda tx: tx.queue_push(["a", "b", "c"]))
    write(backend, lambda tx: tx.queue_push(["b", "d"]))
    assert read(backend, lambda tx: tx.queue_contains("b"))
    assert write(backend, lambda tx: tx.queue_pop(0)) == []
    assert write(backend, lambda tx: tx.queue_pop(2)) == ["a", "b"]
    assert not read(backend, lambda tx: tx.queue_contains("b"))
    write(backend, lambda tx: tx.queue_push(["a"]))  # re-queued goes to the tail
    assert write(backend, lambda tx: tx.queue_pop(10)) == ["c", "d", "a"]
    assert write(backend, lambda tx: tx.queue_pop(1)) == []


def test_sequence_counters(backend: SqliteBackend) -> None:
    assert write(backend, lambda tx: tx.sequence_next("r")) == 1
    assert write(backend, lambda tx: tx.sequence_next("r", 3)) == 2
    assert write(backend, lambda tx: tx.sequence_next("r")) == 5
    write(backend, lambda tx: tx.sequence_raise("r", 3))  # lower: no effect
    assert write(backend, lambda tx: tx.sequence_next("r")) == 6
    write(backend, lambda tx: tx.sequence_raise("r", 10))
    assert write(backend, lambda tx: tx.sequence_next("r")) == 11
    write(backend, lambda tx: tx.sequence_raise("new", 4))
    assert write(backend, lambda tx: tx.sequence_next("new")) == 5


def test_spans(backend: SqliteBackend) -> None:
    spans = [make_span("r", "a1", 2), make_span("r", "a1", 1), make_span("r", "a2", 3), make_span("q", "a1", 1)]
    assert write(backend, lambda tx: tx.insert_spans(spans)) == [True] * 4
    dup = attrs.evolve(spans[0], name="changed")
    new = make_span("r", "a2", 4)
    assert write(backend, lambda tx: tx.insert_spans([dup, new, new])) == [False, True, False]
    assert read(backend, lambda tx: tx.get_spans("r")) == [spans[1], spans[0], spans[2], new]
    assert read(backend, lambda tx: tx.get_spans("r", "a2")) == [spans[2], new]
    assert read(backend, lambda tx: tx.get_spans("missing")) == []
    assert read(backend, lambda tx: tx.count_spans()) == 5
    # same span id under another attempt is a different span
    assert write(backend, lambda tx: tx.insert_spans([attrs.evolve(spans[0], attempt_id="a9")])) == [True]


def test_span_extras_survive(backend: SqliteBackend) -> None:
    span = attrs.evolve(make_span("r", "a", 1), extras={"custom_field": {"x": [1, 2]}})
    write(backend, lambda tx: tx.insert_spans([span]))
    assert read(backend, lambda tx: tx.get_spans("r")) == [span]


def test_resources(backend: SqliteBackend) -> None:
    assert read(backend, lambda tx: tx.get_latest_resources()) is None
    r1, r2 = make_resources("res-1"), make_resources("res-2")
    write(backend, lambda tx: tx.put_resources(r1))
    write(backend, lambda tx: tx.put_resources(r2))
    assert read(backend, lambda tx: tx.get_latest_resources()) == r2
    r1b = attrs.evolve(r1, version=2, update_time=3.0)
    write(backend, lambda tx: tx.put_resources(r1b))
    assert read(backend, lambda tx: tx.get_latest_resources()) == r1b
    assert read(backend, lambda tx: tx.get_resources("res-1")) == r1b
    assert read(backend, lambda tx: tx.get_resources("nope")) is None
    assert read(backend, lambda tx: list(tx.iter_resources())) == [r1b, r2]
    assert read(backend, lambda tx: tx.count_resources()) == 2


def test_workers(backend: SqliteBackend) -> None:
    w1, w2 = make_worker("w1"), make_worker("w2")
    write(backend, lambda tx: (tx.put_worker(w2), tx.put_worker(w1)))
    w2b = attrs.evolve(w2, status="idle", last_idle_time=4.0)
    write(backend, lambda tx: tx.put_worker(w2b))
    assert read(backend, lambda tx: tx.get_worker("w2")) == w2b
    assert read(backend, lambda tx: tx.get_worker("w3")) is None
    assert read(backend, lambda tx: list(tx.iter_workers())) == [w2b, w1]
    assert read(backend, lambda tx: tx.count_workers()) == 2


def test_unstorable_input_is_a_clear_error(backend: SqliteBackend) -> None:
    bad = attrs.evolve(make_rollout("a"), input={"x": object()})
    with pytest.raises(InvalidRequestError, match="Rollout a cannot be stored as JSON"):
        write(backend, lambda tx: tx.insert_rollouts([bad]))
    assert read(backend, lambda tx: tx.count_rollouts()) == 0


def test_exception_in_fn_rolls_back_everything(backend: SqliteBackend) -> None:
    class Boom(Exception):
        pass

    def fn(tx):  # type: ignore[no-untyped-def]
        tx.insert_rollouts([make_rollout("a")])
        tx.queue_push(["a"])
        tx.insert_spans([make_span("a", "x", 1)])
        tx.sequence_next("a", 5)
        raise Boom

    with pytest.raises(Boom):
        write(backend, fn)
    assert read(backend, lambda tx: (tx.count_rollouts(), tx.queue_contains("a"), tx.count_spans())) == (0, False, 0)
    assert write(backend, lambda tx: tx.sequence_next("a")) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values, metadata=st.dictionaries(st.text(max_size=8), json_values, max_size=3))
def test_json_inputs_round_trip(backend: SqliteBackend, value: object, metadata: dict) -> None:  # type: ignore[type-arg]
    rollout = attrs.evolve(make_rollout("x"), input=value, metadata=metadata)
    write(
        backend, lambda tx: tx.insert_rollouts([rollout]) if tx.get_rollout("x") is None else tx.update_rollout(rollout)
    )
    assert read(backend, lambda tx: tx.get_rollout("x")) == rollout


def test_iter_rollouts_with_many_ids_keeps_insertion_order(backend: SqliteBackend) -> None:
    rollouts = [make_rollout(f"r{i:04d}", status="running" if i % 3 else "queuing") for i in range(1500)]
    write(backend, lambda tx: tx.insert_rollouts(rollouts))
    wanted = [r.rollout_id for r in reversed(rollouts)] + ["missing", "r0001"]  # several chunks, repeats, unknowns
    got = read(backend, lambda tx: list(tx.iter_rollouts(rollout_id_in=wanted)))
    assert got == rollouts
    got = read(backend, lambda tx: list(tx.iter_rollouts(rollout_id_in=wanted, status_in=["queuing"])))
    assert got == [r for r in rollouts if r.status == "queuing"]


def test_finished_among_ids_are_looked_up_by_id_not_by_status(backend: SqliteBackend) -> None:
    """A poller's read (its pending ids, finished statuses) searches the ids, whatever the number of finished rollouts
    in the store: a walk of a status index would cost more the more rollouts finished."""
    rollouts = [make_rollout(f"r{i:03d}", status="succeeded" if i % 4 else "running") for i in range(700)]
    write(backend, lambda tx: tx.insert_rollouts(rollouts))
    wanted = [f"r{i:03d}" for i in range(0, 700, 2)] + [f"missing{i}" for i in range(300)]  # two chunks

    def poll(tx: SqliteTransaction) -> tuple[list[str], list[str]]:
        statements: list[str] = []
        tx._conn.set_trace_callback(statements.append)
        try:
            found = [r.rollout_id for r in tx.iter_rollouts(status_in=["failed", "succeeded"], rollout_id_in=wanted)]
        finally:
            tx._conn.set_trace_callback(None)
        plans = [str(row[3]) for sql in statements for row in tx._conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        return found, plans

    found, plans = read(backend, poll)
    assert found == [f"r{i:03d}" for i in range(2, 700, 4)]
    assert plans and all("USING INDEX sqlite_autoindex_rollouts" in plan and "rollout_id=?" in plan for plan in plans)


@pytest.mark.parametrize("sort", [None, Sort("end_time", "desc"), Sort("start_time", "asc")])
@pytest.mark.parametrize(("limit", "many_ids"), [(-1, False), (10, False), (10, True)])
def test_pushed_down_queries_by_ids_and_status_look_up_the_ids(
    backend: SqliteBackend, sort: Optional[Sort], limit: int, many_ids: bool
) -> None:
    """``query_rollouts`` with rollout ids and a status filter (its push-down in SQL) searches the ids, not an index of
    the statuses or times over every finished rollout of the store; the answer is the same as the Python filter's."""
    rollouts = [
        attrs.evolve(
            make_rollout(f"r{i:03d}", status="succeeded" if i % 4 else "running"),
            start_time=float(i),
            end_time=float(i % 7),
        )
        for i in range(700)
    ]
    write(backend, lambda tx: tx.insert_rollouts(rollouts))
    wanted = [f"r{i:03d}" for i in range(0, 700, 2)] + [f"missing{i}" for i in range(600 if many_ids else 30)]
    where = Where(
        must=(Condition("rollout_id", "within", wanted), Condition("status", "within", ["failed", "succeeded"]))
    )

    def query(tx: SqliteTransaction) -> tuple[Any, Any, list[str]]:
        statements: list[str] = []
        tx._conn.set_trace_callback(statements.append)
        try:
            page = tx.select("rollouts", where, sort, limit, 0)
            total = tx.count("rollouts", where)
        finally:
            tx._conn.set_trace_callback(None)
        plans = [str(row[3]) for sql in statements for row in tx._conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        return page, total, plans

    page, total, plans = read(backend, query)
    expected = [r for r in rollouts if where.test(r)]
    if sort is not None:
        expected.sort(key=lambda r: getattr(r, sort.field), reverse=sort.order == "desc")
    assert page is not None and total == len(expected) == 175
    assert page[0] == (expected if limit == -1 else expected[:limit]) and page[1] == total
    searches = [plan for plan in plans if plan.startswith(("SEARCH rollouts", "SCAN rollouts"))]
    by_id = [plan for plan in searches if "sqlite_autoindex_rollouts" in plan and "(rollout_id=?)" in plan]
    page_reads = [plan for plan in searches if plan.endswith("USING INTEGER PRIMARY KEY (rowid=?)")]
    assert by_id and len(by_id) + len(page_reads) == len(searches), searches


def test_reads_after_writes_in_one_transaction_see_the_writes(backend: SqliteBackend) -> None:
    def fn(tx: SqliteTransaction) -> None:
        tx.insert_rollouts([make_rollout("r")])
        rollout = tx.get_rollout("r")
        assert rollout is not None
        tx.update_rollout(attrs.evolve(rollout, status="running"))
        assert tx.get_rollout("r").status == "running"  # type: ignore[union-attr]
        tx.insert_attempt(make_attempt("r", 1))
        attempt = tx.get_attempt("r", "r-at1")
        assert attempt is not None
        tx.update_attempt(attrs.evolve(attempt, status="running"))
        assert tx.get_attempt("r", "r-at1").status == "running"  # type: ignore[union-attr]
        assert tx.get_latest_attempts(["r"])["r"].status == "running"
        tx.insert_attempt(make_attempt("r", 2))
        assert tx.get_latest_attempts(["r"])["r"].attempt_id == "r-at2"

    backend.run_sync(fn, write=True)
    assert backend.run_sync(lambda tx: tx.get_rollout("r"), write=False).status == "running"
    latest = backend.run_sync(lambda tx: tx.get_latest_attempts(["r"]), write=False)
    assert latest["r"].attempt_id == "r-at2"
    assert backend.run_sync(lambda tx: tx.get_attempt("r", "r-at1"), write=False).status == "running"


def test_update_attempt_may_change_its_sequence_id(backend: SqliteBackend) -> None:
    backend.run_sync(
        lambda tx: (tx.insert_rollouts([make_rollout("r")]), tx.insert_attempt(make_attempt("r", 1))), write=True
    )
    moved = attrs.evolve(make_attempt("r", 1), sequence_id=5)
    backend.run_sync(lambda tx: tx.update_attempt(moved), write=True)
    assert backend.run_sync(lambda tx: tx.get_attempts("r"), write=False) == [moved]
    with pytest.raises(ValueError, match="is not stored"):
        backend.run_sync(lambda tx: tx.update_attempt(make_attempt("r", 9)), write=True)
