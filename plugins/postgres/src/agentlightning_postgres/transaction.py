"""PostgresTransaction: the store's reads and writes on one psycopg connection inside an open transaction.

Queries (:class:`~agentlightning.store.backend.QueryTransaction`) are answered in SQL for the kinds and conditions
PostgreSQL compares exactly as Python does (text under the ``C`` collation, finite numbers); anything else returns
``None`` and the engine answers in Python.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Collection,
    Dict,
    Hashable,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
)

from agentlightning.store.query import AT_LEAST, Condition, Sort, Where
from agentlightning.types.core import FINISHED_STATUSES, Attempt, Rollout, Worker
from agentlightning.types.resources import ResourcesUpdate
from agentlightning.types.tracer import Span

from .codec import decode, decode_rollout, encode

__all__ = ["PostgresTransaction", "Statement"]


def _text(value: object) -> bool:
    """Whether ``value`` is a string PostgreSQL stores and compares as Python does (no NUL, no lone surrogate)."""
    if type(value) is not str or "\0" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _integer(value: object) -> bool:
    return type(value) is int and -(2**63) <= value < 2**63


def _number(value: object) -> bool:
    return (type(value) is float and math.isfinite(value)) or _integer(value)


def _time(value: object) -> Optional[float]:
    """A rollout time as its column holds it (NULL for None and for what no SQL number sorts like)."""
    return float(value) if _number(value) else None  # type: ignore[arg-type]


_FITS: Dict[str, Callable[[object], bool]] = {"text": _text, "integer": _integer, "real": _number}


@dataclass(frozen=True)
class _Table:
    table: str
    columns: Dict[str, str]
    base_order: str
    decode: Callable[[str], Any]
    scoped_by: Optional[str] = None
    derived: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    """Filterable (not sortable) fields without a column: field -> (type, SQL expression over the row)."""


_TABLES: Dict[str, _Table] = {
    "rollouts": _Table(
        "rollouts",
        {"rollout_id": "text", "status": "text", "start_time": "real", "end_time": "real"},
        "pk",
        decode_rollout,
        derived={"mode": ("text", "(data::json ->> 'mode')")},
    ),
    "spans": _Table(
        "spans",
        {"rollout_id": "text", "attempt_id": "text", "span_id": "text", "sequence_id": "integer"},
        "sequence_id, pk",
        lambda data: decode(data, Span),
        scoped_by="rollout_id",
        derived={"name": ("text", "(data::json ->> 'name')")},
    ),
    "resources": _Table("resources", {"resources_id": "text"}, "pk", lambda data: decode(data, ResourcesUpdate)),
    "workers": _Table("workers", {"worker_id": "text"}, "pk", lambda data: decode(data, Worker)),
}
"""The kinds answered in SQL (attempts, a handful per rollout, are left to the engine)."""


def _column(field: str, column_type: str) -> str:
    return f'{field} COLLATE "C"' if column_type == "text" else field


def _condition_sql(cond: Condition, table: _Table) -> Optional[Tuple[str, List[object]]]:
    """``cond`` as SQL with its parameters, or None when SQL would not give Python's answer."""
    # equality under any deterministic collation is equality of the bytes
    column_type, column = table.derived.get(cond.field) or (table.columns.get(cond.field), cond.field)
    if column_type is None:
        return None
    fits = _FITS[column_type]
    value = cond.value
    if cond.op == "exact":
        return (f"{column} = %s", [value]) if fits(value) else None
    if cond.op == "within":
        if type(value) not in (list, tuple, set, frozenset) or not all(fits(v) for v in value):
            return None
        values = list(dict.fromkeys(value))
        if not values:
            return "FALSE", []
        if column_type != "text":
            return None  # int/float mixes would need a common SQL type
        return f"{column} = ANY(%s)", [values]
    if cond.op == AT_LEAST:  # a number column from a finite number (NULL, like Python's None, never matches)
        return (f"{column} >= %s", [value]) if column_type == "real" and _number(value) else None
    if cond.op == "contains" and column_type == "text" and _text(value):  # case-sensitive substring
        return f"strpos({column}, %s) > 0", [value]
    return None


def _where_sql(where: Where, table: _Table) -> Optional[Tuple[str, List[object]]]:
    parts: List[str] = []
    params: List[object] = []
    pooled: List[str] = []
    for conditions, out in ((where.must, parts), (where.pooled, pooled)):
        for cond in conditions:
            sql = _condition_sql(cond, table)
            if sql is None:
                return None
            # a must condition is ANDed at the top, where NULL excludes a row as FALSE does: left bare, an index on
            # its column can serve it (``start_time >= %s`` of a page read by key)
            out.append(sql[0] if out is parts else f"COALESCE({sql[0]}, FALSE)")
            params.extend(sql[1])
    if pooled:
        joiner = " OR " if where.aggregate == "or" else " AND "
        parts.append("(" + joiner.join(pooled) + ")")
    return (" AND ".join(parts) or "TRUE"), params


_EVERY_TABLE = frozenset({"rollouts", "attempts", "queue", "span_counters", "spans", "resources", "workers"})
"""What a statement is taken to read unless it says less: all the tables deferred writes may touch."""

Statement = Tuple[str, Sequence[object]]
"""SQL and its parameters."""

_Latest = Optional[Tuple[str, int, str]]
"""A rollout's latest attempt as this transaction knows it: (attempt id, sequence id, stored JSON), or None when the
rollout has no attempt."""

_SEQUENCE_NEXT = (
    "INSERT INTO span_counters (rollout_id, next_id) VALUES (%s, %s) "
    "ON CONFLICT (rollout_id) DO UPDATE SET next_id = span_counters.next_id + %s RETURNING next_id"
)
_SEQUENCE_RAISE = (
    "INSERT INTO span_counters (rollout_id, next_id) VALUES (%s, %s) "
    "ON CONFLICT (rollout_id) DO UPDATE SET next_id = excluded.next_id WHERE excluded.next_id > span_counters.next_id"
)
_INSERT_SPANS = (
    "INSERT INTO spans (rollout_id, attempt_id, span_id, sequence_id, data) "
    "SELECT r, a, s, q, d FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[]) "
    "WITH ORDINALITY AS given(r, a, s, q, d, i) ORDER BY i "
    "ON CONFLICT (rollout_id, attempt_id, span_id) DO NOTHING RETURNING rollout_id, attempt_id, span_id"
)


def _of_rollout(key: Tuple[str, Hashable], rollout_id: str) -> bool:
    """Whether a deferred write's key is of ``rollout_id``'s rows (the rollout or one of its attempts)."""
    table, row = key
    return (table == "rollouts" and row == rollout_id) or (
        table == "attempts" and isinstance(row, tuple) and row[0] == rollout_id
    )


class PostgresTransaction:
    """The StorageTransaction (and QueryTransaction) of :class:`~.backend.PostgresBackend`.

    Fewer statements: reading a rollout also reads its latest attempt (one statement), claiming rollouts from the
    queue reads both for each, and the transaction keeps the latest attempt of each rollout it read or wrote (and
    the rollouts it claimed), as stored JSON decoded afresh each time it is served, so the engine's later reads of
    them cost no round trip. What the transaction writes updates what it keeps; no
    other transaction writes meanwhile (writes hold the schema's lock; reads see one snapshot).

    Fewer statements still: a write whose outcome the engine does not need back (a rollout or attempt this
    transaction read or wrote, so the row is there to update; a worker's upsert; a span counter's raise) is deferred,
    and goes as a data-modifying ``WITH`` clause into the next statement that writes (the span insert, the idempotency
    key's insert), or into one statement of its own before a read that could see its rows and before the commit
    (:meth:`flush`). Deferred writes of one row are coalesced: the last one is sent.

    Fewer round trips (with ``pipelines``): the statements that open the transaction (``opening``: its ``BEGIN``, a
    write's lock) are sent in one pipeline with its first statement, and :meth:`commit` sends the last deferred
    writes, the idempotency key's insert, the ``NOTIFY`` and the ``COMMIT`` in another. Either way, a transaction
    that sent nothing costs no round trip at all.
    """

    def __init__(self, conn: Any, opening: Sequence[Statement] = (), *, pipelines: bool = True) -> None:
        self._conn = conn
        self._cur = conn.cursor()
        self._opening: Optional[Sequence[Statement]] = opening or None
        """Statements to send with the first one (None once sent)."""
        self._pipelines = pipelines
        """Whether to send statements whose results are not needed yet in one pipeline with the next one; without,
        the opening and the commit each take a round trip of their own."""
        self._in_pipeline = False
        self.answered = False
        """Whether the database answered the transaction's first round trip (a failure before that left nothing
        written: the connection was dead)."""
        self.committing = False
        """Whether the commit was sent (a failure after that leaves the outcome unknown)."""
        self._claim: Optional[Statement] = None
        """The idempotency key's insert, sent with the commit."""
        self._claimed: Optional[str] = None
        self.finished: List[str] = []
        """Rollouts this transaction set to a finished status (announced with NOTIFY at commit)."""
        self._latest: Dict[str, _Latest] = {}
        self._rollouts: Dict[str, str] = {}
        """Rollouts claimed from the queue by this transaction, as stored JSON (read with the claim)."""
        self._pending: Dict[Tuple[str, Hashable], Tuple[str, Tuple[object, ...]]] = {}
        """Deferred writes by (table, row key): (SQL, parameters), sent in this order."""
        self._known_rollouts: Set[str] = set()
        """Rollouts whose row this transaction read or inserted (an update of them needs no row count back)."""
        self._known_attempts: Set[Tuple[str, str]] = set()
        self._workers: Dict[str, str] = {}
        """Workers whose deferred upsert is pending, as JSON: a read of them is answered from it."""

    def _all(
        self, sql: str, params: Sequence[object] = (), reads: Collection[str] = _EVERY_TABLE
    ) -> List[Tuple[Any, ...]]:
        self._settle(reads)
        self._execute(sql, params)
        return list(self._cur.fetchall())

    def _one(
        self, sql: str, params: Sequence[object] = (), reads: Collection[str] = _EVERY_TABLE
    ) -> Optional[Tuple[Any, ...]]:
        self._settle(reads)
        self._execute(sql, params)
        row = self._cur.fetchone()
        return None if row is None else tuple(row)

    # -- round trips -------------------------------------------------------------------------------------------

    @contextmanager
    def _pipeline(self) -> Iterator[None]:
        """The statements sent in the block go in one round trip (their results are read at its end)."""
        self._in_pipeline = True
        try:
            with self._conn.pipeline():
                yield
        finally:
            self._in_pipeline = False
        self.answered = True

    def _execute(self, sql: Any, params: Sequence[object] = (), *, many: bool = False) -> None:
        """Run one statement (``many``: once per parameter tuple); the first one carries the opening statements
        (in its pipeline; without pipelines, just before it)."""
        if self._opening is not None:
            if self._pipelines and not self._in_pipeline:
                with self._pipeline():
                    self._execute(sql, params, many=many)
                return
            opening, self._opening = self._opening, None
            self._send_all(opening)
            self.answered = self.answered or not self._pipelines
        if many:
            self._cur.executemany(sql, params)
        else:
            self._cur.execute(sql, params)

    def open_waiting_briefly(self, opening: Sequence[Statement]) -> bool:
        """Open the transaction with ``opening`` now, in one round trip; False when a lock it waits for (under a
        ``lock_timeout`` it sets) was not free in time: the transaction is then aborted."""
        import psycopg.errors

        self._opening = None
        try:
            if self._pipelines:
                with self._pipeline():
                    self._send_all(opening)
            else:
                self._send_all(opening)
        except psycopg.errors.LockNotAvailable:
            self.answered = True
            return False
        self.answered = True
        return True

    def _send_all(self, statements: Sequence[Statement]) -> None:
        """Send ``statements``, whose results are not needed: in the open pipeline, or else as one simple query
        (one round trip; parameters merged into the text as literals)."""
        if self._pipelines:
            for statement, statement_params in statements:
                self._conn.execute(statement, statement_params or None, prepare=False)
            return
        text = "; ".join(self._literal(statement, statement_params) for statement, statement_params in statements)
        self._cur.execute(text, prepare=False)

    def _literal(self, sql: str, params: Sequence[object]) -> str:
        if not params:
            return sql
        import psycopg

        return psycopg.ClientCursor(self._conn).mogrify(sql, params)

    def commit(self, closing: Sequence[Statement] = ()) -> None:
        """Send the deferred writes (with the idempotency key's insert), ``closing`` (the ``NOTIFY`` of finishes)
        and ``COMMIT``: in one pipeline, or without pipelines in two round trips (the writes; the rest as one
        simple query). Nothing is sent when the transaction has sent nothing and has nothing to write.

        A transaction that has sent nothing yet sends its opening and writes first, in a round trip of their own:
        the commit is sent only once the database has answered on this connection, so that a dead pooled
        connection fails where the transaction can still be tried again. A key recorded already fails the
        transaction with :class:`~agentlightning.store.request_keys.RequestAlreadyAppliedError` (nothing is
        written)."""
        claim, self._claim = self._claim, None
        try:
            if self._opening is not None:
                if not self._pending and claim is None:
                    return
                self._send_writes(claim)
                claim = None
            self.committing = True
            ending: List[Statement] = [*closing, ("COMMIT", ())]
            if self._pipelines and (self._pending or claim is not None or closing):
                with self._pipeline():
                    self._send_writes(claim)
                    self._send_all(ending)
            else:
                self._send_writes(claim)
                self._send_all(ending)
        except Exception as exc:
            if self._key_taken(exc):
                from agentlightning.store.request_keys import RequestAlreadyAppliedError

                raise RequestAlreadyAppliedError(f"request {self._claimed!r} was applied already") from exc
            raise

    def _send_writes(self, claim: Optional[Statement]) -> None:
        """The idempotency key's insert carrying the deferred writes, or (without a key) the deferred writes, if
        any."""
        if claim is not None:
            self._write(claim[0], claim[1], touches=())
        else:
            self.flush()

    def _key_taken(self, exc: Exception) -> bool:
        """Whether ``exc`` is the claimed idempotency key's insert finding the key recorded."""
        import psycopg.errors

        return (
            self._claimed is not None
            and isinstance(exc, psycopg.errors.UniqueViolation)
            and exc.diag.table_name == "request_keys"
        )

    # -- deferred writes ---------------------------------------------------------------------------------------

    def _defer(self, table: str, key: Hashable, sql: str, params: Tuple[object, ...]) -> None:
        self._pending.pop((table, key), None)  # the last write of a row goes last
        self._pending[(table, key)] = (sql, params)

    def _with_pending(self, sql: str, params: Sequence[object]) -> Tuple[str, List[object]]:
        """``sql`` preceded by the deferred writes as ``WITH`` clauses, and all the parameters; clears them.

        The clauses and the statement see one snapshot, so they must write rows that ``sql`` does not read: the
        deferred writes are of other tables than the statements that take them in (spans, request keys)."""
        clauses: List[str] = []
        combined: List[object] = []
        for i, (clause, clause_params) in enumerate(self._pending.values()):
            clauses.append(f"w{i} AS ({clause})")
            combined.extend(clause_params)
        self._pending.clear()
        self._workers.clear()
        combined.extend(params)
        return "WITH " + ", ".join(clauses) + " " + sql, combined

    def _write(self, sql: str, params: Sequence[object], *, touches: Collection[str]) -> None:
        """Run a write statement, carrying the deferred writes along (those of the tables it ``touches`` go first,
        in a statement of their own: one statement must not write a row twice, nor read what it writes)."""
        self._settle(touches)
        if self._pending:
            sql, params = self._with_pending(sql, params)
        self._execute(sql, params)

    def flush(self) -> None:
        """Send the deferred writes (one statement); the backend calls this before the commit."""
        if self._pending:
            *_, last = self._pending
            sql, params = self._pending.pop(last)
            if last[0] == "workers":
                self._workers.pop(str(last[1]), None)
            self._write(sql, params, touches=())

    def _settle(self, tables: Collection[str]) -> None:
        """Flush before a statement that reads ``tables``, if a deferred write touches one of them."""
        if self._pending and any(table in tables for table, _ in self._pending):
            self.flush()

    def _count(self, table: str) -> int:
        row = self._one(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - fixed table names
        return int(row[0]) if row else 0

    # -- rollouts ----------------------------------------------------------------------------------------------

    def get_rollout(self, rollout_id: str) -> Optional[Rollout]:
        kept = self._rollouts.get(rollout_id)
        if kept is not None:
            return decode_rollout(kept)
        if self._pending and any(_of_rollout(key, rollout_id) for key in self._pending):
            self.flush()
        row = self._one(
            "SELECT r.data, a.attempt_id, a.sequence_id, a.data FROM rollouts r LEFT JOIN LATERAL "
            "(SELECT attempt_id, sequence_id, data FROM attempts WHERE rollout_id = r.rollout_id "
            "ORDER BY sequence_id DESC LIMIT 1) a ON TRUE WHERE r.rollout_id = %s",
            (rollout_id,),
            reads=(),
        )
        if row is None:
            return None
        self._known_rollouts.add(rollout_id)
        self._remember_latest(rollout_id, row[1], row[2], row[3])
        return decode_rollout(row[0])

    def _remember_latest(self, rollout_id: str, attempt_id: Optional[str], sequence_id: Any, data: Any) -> None:
        if attempt_id is None:
            self._latest[rollout_id] = None
        else:
            self._latest[rollout_id] = (attempt_id, int(sequence_id), data)
            self._known_attempts.add((rollout_id, attempt_id))

    def insert_rollouts(self, rollouts: Sequence[Rollout]) -> None:
        """All of ``rollouts`` in one statement, in the given order; none of them when one id is stored already
        (or given twice): ValueError, and the transaction stays usable."""
        if not rollouts:
            return
        ids = [r.rollout_id for r in rollouts]
        rows = self._all(
            "INSERT INTO rollouts (rollout_id, status, start_time, end_time, data) "
            "SELECT r, s, b, e, d FROM unnest(%s::text[], %s::text[], %s::float8[], %s::float8[], %s::text[]) "
            "WITH ORDINALITY AS given(r, s, b, e, d, i) ORDER BY i "
            "ON CONFLICT (rollout_id) DO NOTHING RETURNING pk",
            (
                ids,
                [r.status for r in rollouts],
                [_time(r.start_time) for r in rollouts],
                [_time(r.end_time) for r in rollouts],
                [encode(r) for r in rollouts],
            ),
            reads=(),
        )
        if len(rows) < len(rollouts):
            if rows:
                self._execute("DELETE FROM rollouts WHERE pk = ANY(%s)", ([row[0] for row in rows],))
            raise ValueError(f"rollout id already stored (or given twice): one of {ids[:10]}")
        self._known_rollouts.update(ids)

    def _update_row(
        self, table: str, key: Hashable, known: Set[Any], sql: str, params: Tuple[object, ...], what: str
    ) -> None:
        """An UPDATE of one row: deferred when the row is known to exist in this transaction, else run at once and
        refused with ``what`` when it matched nothing."""
        if key in known:
            self._defer(table, key, sql, params)
            return
        self._write(sql, params, touches=(table,))
        if self._cur.rowcount == 0:
            raise ValueError(f"{what} is not stored")
        known.add(key)

    def update_rollout(self, rollout: Rollout) -> None:
        rollout_id = rollout.rollout_id
        sql = "UPDATE rollouts SET status = %s, start_time = %s, end_time = %s, data = %s WHERE rollout_id = %s"
        params = (rollout.status, _time(rollout.start_time), _time(rollout.end_time), encode(rollout), rollout_id)
        self._update_row("rollouts", rollout_id, self._known_rollouts, sql, params, f"rollout {rollout_id!r}")
        self._rollouts.pop(rollout_id, None)  # a later read goes to the database
        if rollout.status in FINISHED_STATUSES:
            self.finished.append(rollout.rollout_id)

    def iter_rollouts(
        self, *, status_in: Optional[Sequence[str]] = None, rollout_id_in: Optional[Sequence[str]] = None
    ) -> Iterable[Rollout]:
        clauses: List[str] = []
        params: List[object] = []
        if status_in is not None:
            clauses.append("status = ANY(%s)")
            params.append(list(status_in))
        if rollout_id_in is not None:
            clauses.append("rollout_id = ANY(%s)")
            params.append(list(dict.fromkeys(rollout_id_in)))
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._all(f"SELECT data FROM rollouts{where} ORDER BY pk", params)  # noqa: S608
        return [decode_rollout(row[0]) for row in rows]

    def count_rollouts(self) -> int:
        return self._count("rollouts")

    # -- attempts ----------------------------------------------------------------------------------------------

    def insert_attempt(self, attempt: Attempt) -> None:
        data = encode(attempt)
        key = (attempt.rollout_id, attempt.attempt_id)
        self._write(
            "INSERT INTO attempts (rollout_id, attempt_id, sequence_id, data) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (rollout_id, attempt_id) DO NOTHING",
            (*key, attempt.sequence_id, data),
            touches=("attempts",),
        )
        if self._cur.rowcount == 0:
            raise ValueError(f"attempt {attempt.attempt_id!r} of rollout {attempt.rollout_id!r} already stored")
        self._known_attempts.add(key)
        self._keep(attempt, data, inserted=True)

    def update_attempt(self, attempt: Attempt) -> None:
        data = encode(attempt)
        key = (attempt.rollout_id, attempt.attempt_id)
        sql = "UPDATE attempts SET sequence_id = %s, data = %s WHERE rollout_id = %s AND attempt_id = %s"
        params = (attempt.sequence_id, data, *key)
        what = f"attempt {attempt.attempt_id!r} of rollout {attempt.rollout_id!r}"
        self._update_row("attempts", key, self._known_attempts, sql, params, what)
        self._keep(attempt, data, inserted=False)

    def _keep(self, attempt: Attempt, data: str, *, inserted: bool) -> None:
        """Update the kept latest attempt of ``attempt``'s rollout after writing ``attempt`` (stored as ``data``)."""
        rollout_id = attempt.rollout_id
        if rollout_id not in self._latest:
            return
        known = self._latest[rollout_id]
        sequence_id = int(attempt.sequence_id)
        if known is None or (inserted and sequence_id > known[1]):
            self._latest[rollout_id] = (attempt.attempt_id, sequence_id, data)
        elif known[0] == attempt.attempt_id and known[1] == sequence_id:
            self._latest[rollout_id] = (known[0], sequence_id, data)
        elif known[0] == attempt.attempt_id or sequence_id >= known[1]:
            del self._latest[rollout_id]  # the order of the attempts changed: read it again when asked

    def get_attempt(self, rollout_id: str, attempt_id: str) -> Optional[Attempt]:
        known = self._latest.get(rollout_id)
        if known is not None and known[0] == attempt_id:
            return decode(known[2], Attempt)
        row = self._one("SELECT data FROM attempts WHERE rollout_id = %s AND attempt_id = %s", (rollout_id, attempt_id))
        if row is None:
            return None
        self._known_attempts.add((rollout_id, attempt_id))
        return decode(row[0], Attempt)

    def get_attempts(self, rollout_id: str) -> List[Attempt]:
        rows = self._all("SELECT data FROM attempts WHERE rollout_id = %s ORDER BY sequence_id", (rollout_id,))
        return [decode(row[0], Attempt) for row in rows]

    def get_latest_attempts(self, rollout_ids: Sequence[str]) -> Dict[str, Attempt]:
        wanted = list(dict.fromkeys(rollout_ids))
        missing = [rollout_id for rollout_id in wanted if rollout_id not in self._latest]
        if missing:
            rows = self._all(
                "SELECT DISTINCT ON (rollout_id) rollout_id, attempt_id, sequence_id, data FROM attempts "
                "WHERE rollout_id = ANY(%s) ORDER BY rollout_id, sequence_id DESC",
                (missing,),
            )
            found = {row[0]: row for row in rows}
            for rollout_id in missing:
                row = found.get(rollout_id)
                self._remember_latest(rollout_id, *(row[1:] if row is not None else (None, None, None)))
        latest: Dict[str, Attempt] = {}
        for rollout_id in wanted:
            known = self._latest[rollout_id]
            if known is not None:
                latest[rollout_id] = decode(known[2], Attempt)
        return latest

    def count_attempts(self) -> int:
        return self._count("attempts")

    # -- queue -------------------------------------------------------------------------------------------------

    def queue_push(self, rollout_ids: Sequence[str]) -> None:
        self._execute(
            "INSERT INTO queue (rollout_id) VALUES (%s) ON CONFLICT (rollout_id) DO NOTHING",
            [(r,) for r in rollout_ids],
            many=True,
        )

    def queue_pop(self, limit: int) -> List[str]:
        """The head of the queue, claimed with ``FOR UPDATE SKIP LOCKED``: rows another transaction is claiming
        are passed over, never handed out twice."""
        if limit <= 0:
            return []
        rows = self._all(
            "WITH popped AS (DELETE FROM queue WHERE pos IN "
            "(SELECT pos FROM queue ORDER BY pos LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING pos, rollout_id) "
            "SELECT p.pos, p.rollout_id, r.data, a.attempt_id, a.sequence_id, a.data FROM popped p "
            "LEFT JOIN rollouts r ON r.rollout_id = p.rollout_id LEFT JOIN LATERAL "
            "(SELECT attempt_id, sequence_id, data FROM attempts WHERE rollout_id = p.rollout_id "
            "ORDER BY sequence_id DESC LIMIT 1) a ON TRUE",
            (limit,),
            reads=("queue", "rollouts", "attempts"),
        )
        rows.sort(key=lambda row: int(row[0]))
        for _, rollout_id, data, attempt_id, sequence_id, attempt in rows:  # the engine reads them next
            if data is not None:
                self._rollouts[rollout_id] = data
                self._known_rollouts.add(rollout_id)
                self._remember_latest(rollout_id, attempt_id, sequence_id, attempt)
        return [str(row[1]) for row in rows]

    def queue_contains(self, rollout_id: str) -> bool:
        return self._one("SELECT 1 FROM queue WHERE rollout_id = %s", (rollout_id,)) is not None

    # -- span sequence counters --------------------------------------------------------------------------------

    def sequence_next(self, rollout_id: str, count: int = 1) -> int:
        self._write(_SEQUENCE_NEXT, (rollout_id, 1 + count, count), touches=("span_counters",))
        row = self._cur.fetchone()
        assert row is not None
        return int(row[0]) - count

    def sequence_raise(self, rollout_id: str, value: int) -> None:
        """Deferred: it goes with the span insert that follows it (the engine raises the counter before inserting
        the spans that carry ``value``)."""
        pending = self._pending.get(("span_counters", rollout_id))
        if pending is not None:
            value = max(value, int(pending[1][1]) - 1)  # type: ignore[call-overload]
        self._defer("span_counters", rollout_id, _SEQUENCE_RAISE, (rollout_id, value + 1))

    # -- spans -------------------------------------------------------------------------------------------------

    def insert_spans(self, spans: Sequence[Span]) -> List[bool]:
        """All of ``spans`` in one statement (``unnest`` of one array per column, in the given order), which also
        carries the deferred writes (the span counter's raise); a span whose key is stored already, or came earlier
        in ``spans``, is not stored."""
        if not spans:
            return []
        keys = [(span.rollout_id, span.attempt_id, span.span_id) for span in spans]
        columns = (
            [key[0] for key in keys],
            [key[1] for key in keys],
            [key[2] for key in keys],
            [span.sequence_id for span in spans],
            [encode(span) for span in spans],
        )
        self._write(_INSERT_SPANS, columns, touches=("spans",))
        inserted = {tuple(row) for row in self._cur.fetchall()}
        stored: List[bool] = []
        for key in keys:
            stored.append(key in inserted)
            inserted.discard(key)  # a repeat later in the batch was not stored
        return stored

    def get_spans(self, rollout_id: str, attempt_id: Optional[str] = None) -> List[Span]:
        if attempt_id is None:
            rows = self._all("SELECT data FROM spans WHERE rollout_id = %s ORDER BY sequence_id, pk", (rollout_id,))
        else:
            rows = self._all(
                "SELECT data FROM spans WHERE rollout_id = %s AND attempt_id = %s ORDER BY sequence_id, pk",
                (rollout_id, attempt_id),
            )
        return [decode(row[0], Span) for row in rows]

    def count_spans(self) -> int:
        return self._count("spans")

    # -- idempotency keys (agentlightning.store.request_keys) ---------------------------------------------------

    def claim_request_key(self, key: str, now: float, result: Optional[bytes]) -> bool:
        """Deferred to the commit, where the key's insert carries the deferred writes: a key recorded already fails
        the commit (see :meth:`commit`), which rolls the write back."""
        self._claimed = key
        self._claim = ("INSERT INTO request_keys (key, created, result) VALUES (%s, %s, %s)", (key, now, result))
        return True

    def get_request_key(self, key: str) -> Optional[Tuple[float, Optional[int], Optional[bytes], Optional[bytes]]]:
        from agentlightning.store.request_keys import key_record

        row = self._one("SELECT created, status, body, result FROM request_keys WHERE key = %s", (key,))
        return None if row is None else key_record(row)

    def save_request_response(self, key: str, status: int, body: bytes) -> None:
        self._execute("UPDATE request_keys SET status = %s, body = %s WHERE key = %s", (status, body, key))

    def expire_request_keys(self, before: float) -> int:
        self._execute("DELETE FROM request_keys WHERE created < %s", (before,))
        return int(self._cur.rowcount)

    # -- resources ---------------------------------------------------------------------------------------------

    def get_resources(self, resources_id: str) -> Optional[ResourcesUpdate]:
        row = self._one("SELECT data FROM resources WHERE resources_id = %s", (resources_id,))
        return None if row is None else decode(row[0], ResourcesUpdate)

    def put_resources(self, update: ResourcesUpdate) -> None:
        self._execute(
            "INSERT INTO resources (resources_id, written, data) "
            "VALUES (%s, (SELECT COALESCE(MAX(written), 0) + 1 FROM resources), %s) "
            "ON CONFLICT (resources_id) DO UPDATE SET written = excluded.written, data = excluded.data",
            (update.resources_id, encode(update)),
        )

    def get_latest_resources(self) -> Optional[ResourcesUpdate]:
        row = self._one("SELECT data FROM resources ORDER BY written DESC LIMIT 1")
        return None if row is None else decode(row[0], ResourcesUpdate)

    def iter_resources(self) -> Iterable[ResourcesUpdate]:
        return [decode(row[0], ResourcesUpdate) for row in self._all("SELECT data FROM resources ORDER BY pk")]

    def count_resources(self) -> int:
        return self._count("resources")

    # -- workers -----------------------------------------------------------------------------------------------

    def get_worker(self, worker_id: str) -> Optional[Worker]:
        pending = self._workers.get(worker_id)
        if pending is not None:
            return decode(pending, Worker)
        row = self._one("SELECT data FROM workers WHERE worker_id = %s", (worker_id,), reads=())
        return None if row is None else decode(row[0], Worker)

    def put_worker(self, worker: Worker) -> None:
        """Deferred (an upsert: nothing to check)."""
        data = encode(worker)
        self._defer(
            "workers",
            worker.worker_id,
            "INSERT INTO workers (worker_id, data) VALUES (%s, %s) "
            "ON CONFLICT (worker_id) DO UPDATE SET data = excluded.data",
            (worker.worker_id, data),
        )
        self._workers[worker.worker_id] = data

    def iter_workers(self) -> Iterable[Worker]:
        return [decode(row[0], Worker) for row in self._all("SELECT data FROM workers ORDER BY pk")]

    def count_workers(self) -> int:
        return self._count("workers")

    # -- queries (QueryTransaction) ----------------------------------------------------------------------------

    def _query_parts(self, kind: str, where: Where) -> Optional[Tuple[_Table, str, List[object]]]:
        table = _TABLES.get(kind)
        if table is None:
            return None
        if table.scoped_by is not None and not any(
            c.field == table.scoped_by and c.op == "exact" and _text(c.value) for c in where.must
        ):
            return None
        clause = _where_sql(where, table)
        if clause is None:
            return None
        return table, clause[0], clause[1]

    def select(
        self, kind: str, where: Where, sort: Optional[Sort], limit: int, offset: int
    ) -> Optional[Tuple[List[Any], int]]:
        """The page and the total in one SQL statement; only the page is decoded.

        The total of a limited page is a separate count of the matches (evaluated once), not a window over them
        (which reads every match, record included, before the first row comes): the page itself then
        reads only its own rows where an index gives its order (a page read by key on ``rollouts_by_start_time``
        stops after ``limit`` rows), and the count reads that index alone instead of every match's record."""
        table = _TABLES.get(kind)
        if table is None or (sort is not None and sort.field not in table.columns):
            return None
        parts = self._query_parts(kind, where)
        if parts is None:
            return None
        table, clause, params = parts
        order = table.base_order
        if sort is not None:
            column = _column(sort.field, table.columns[sort.field])
            direction = "DESC NULLS LAST" if sort.order == "desc" else "ASC NULLS FIRST"
            order = f"{column} {direction}, {order}"
        if limit == -1:  # every match is read anyway
            page, total_sql, total_params = "", "COUNT(*) OVER ()", []
        else:
            page, total_sql = f" LIMIT {int(limit)}", f"(SELECT COUNT(*) FROM {table.table} WHERE {clause})"  # noqa: S608
            total_params = params
        rows = self._all(
            f"SELECT data, {total_sql} FROM {table.table} WHERE {clause} ORDER BY {order}{page} OFFSET %s",  # noqa: S608
            [*total_params, *params, offset],
        )
        if rows:
            return [table.decode(row[0]) for row in rows], int(rows[0][1])
        total = self.count(kind, where)
        return [], int(total or 0)

    def count(self, kind: str, where: Where) -> Optional[int]:
        parts = self._query_parts(kind, where)
        if parts is None:
            return None
        table, clause, params = parts
        row = self._one(f"SELECT COUNT(*) FROM {table.table} WHERE {clause}", params)  # noqa: S608
        return int(row[0]) if row else 0
