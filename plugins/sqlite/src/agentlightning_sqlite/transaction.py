"""SqliteTransaction: the StorageTransaction of one open SQLite transaction on one connection."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple, TypeVar

from agentlightning.store.errors import SpansEvictedError
from agentlightning.store.query import AT_LEAST, Condition, Sort, Where
from agentlightning.store.transitions import evolve
from agentlightning.types.core import FINISHED_STATUSES, Attempt, Rollout, Worker
from agentlightning.types.resources import ResourcesUpdate
from agentlightning.types.tracer import Span

from .codec import decode, decode_rollout, encode
from .schema import span_totals

__all__ = ["RecordCache", "SqliteTransaction"]

T = TypeVar("T")

MAX_PARAMS = 500
"""Ids bound per ``IN (...)`` list; longer lists are split."""

_ATTEMPT_WITH_HEARTBEAT = (
    "SELECT {columns} FROM attempts AS a LEFT JOIN span_counters AS c "
    "ON c.rollout_id = a.rollout_id AND c.heartbeat_attempt = a.attempt_id WHERE {where}"
)
"""An attempt's row with the heartbeat its rollout's span_counters row holds for it (NULL: none; schema v5)."""


SPAN_INSERT = (
    "INSERT OR IGNORE INTO spans (rollout_id, attempt_id, span_id, sequence_id, size, data) VALUES (?, ?, ?, ?, ?, ?)"
)
"""A span's row (ignored when the span's ids are stored already)."""

COUNTERS_UPSERT = (
    "INSERT INTO span_counters (rollout_id, next_id, span_count, span_bytes, heartbeat_attempt, "
    "heartbeat_time) VALUES (?, max(?, 1), ?, ?, ?, ?) ON CONFLICT (rollout_id) DO UPDATE SET "
    "next_id = max(next_id, excluded.next_id), span_count = span_count + excluded.span_count, "
    "span_bytes = span_bytes + excluded.span_bytes, "
    "heartbeat_attempt = coalesce(excluded.heartbeat_attempt, heartbeat_attempt), "
    "heartbeat_time = CASE WHEN excluded.heartbeat_attempt IS NULL THEN heartbeat_time "
    "ELSE excluded.heartbeat_time END"
)
"""The pending changes of a rollout's span_counters row (rollout id, next id or 0, spans, bytes, heartbeat attempt or
NULL, heartbeat time): the counters only grow, so max() keeps whichever is ahead; a heartbeat replaces the row's own."""


def _attempt(data: str, heartbeat: Optional[float]) -> Attempt:
    attempt = decode(data, Attempt)
    return attempt if heartbeat is None else evolve(attempt, last_heartbeat_time=heartbeat)


def _chunks(items: Sequence[T], size: int = MAX_PARAMS) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _span_order(row: Tuple[Any, ...]) -> Tuple[int, int]:
    return (row[0], row[1])


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _text(value: object) -> bool:
    """Whether ``value`` is a string SQLite compares exactly as Python does (no NUL, encodable as UTF-8)."""
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
    return (type(value) is float and not math.isnan(value)) or _integer(value)


def _time(value: object) -> Optional[float]:
    """A rollout time as its column holds it: the number, or NULL for None (and for what no SQL number sorts like)."""
    return value if _number(value) else None  # type: ignore[return-value]


_COLUMN_TYPES: Dict[str, Callable[[object], bool]] = {"text": _text, "integer": _integer, "real": _number}


@dataclass(frozen=True)
class _Table:
    """How a kind's queries map onto its table: filterable/sortable columns and the base order."""

    table: str
    columns: Dict[str, str]
    base_order: str
    decode: Callable[[str], Any]
    scoped_by: Optional[str] = None
    derived: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    """Filterable (not sortable) fields without a column: field -> (type, SQL expression over the row)."""
    keyset_indexes: Dict[str, str] = field(default_factory=dict)
    """Sortable column -> its index, used for a page read by key (sorted by the column, ``at_least`` on it)."""


_TABLES: Dict[str, _Table] = {
    "rollouts": _Table(
        "rollouts",
        {"rollout_id": "text", "status": "text", "start_time": "real", "end_time": "real"},
        "pk",
        decode_rollout,
        derived={"mode": ("text", "json_extract(data, '$.mode')")},
        keyset_indexes={"start_time": "rollouts_by_start_time"},
    ),
    "spans": _Table(
        "spans",
        {"rollout_id": "text", "attempt_id": "text", "span_id": "text", "sequence_id": "integer"},
        "sequence_id, pk",
        lambda data: decode(data, Span),
        scoped_by="rollout_id",
        derived={"name": ("text", "json_extract(data, '$.name')")},
    ),
    "resources": _Table("resources", {"resources_id": "text"}, "pk", lambda data: decode(data, ResourcesUpdate)),
    "workers": _Table("workers", {"worker_id": "text"}, "pk", lambda data: decode(data, Worker)),
}
"""The kinds answered in SQL (attempts, a handful per rollout, are left to the engine)."""

_NO_TABLE = _Table("", {}, "", str)


def _condition_sql(
    cond: Condition, table: _Table, unindexed: FrozenSet[str] = frozenset()
) -> Optional[Tuple[str, List[object]]]:
    """``cond`` as an SQL expression with its parameters, or None when SQL would not give Python's answer. Columns in
    ``unindexed`` are written ``+column``, which SQLite cannot answer from an index."""
    column_type, column = table.derived.get(cond.field) or (table.columns.get(cond.field), cond.field)
    if column_type is None:
        return None
    if cond.field in unindexed:
        column = "+" + column
    fits = _COLUMN_TYPES[column_type]
    value = cond.value
    if cond.op == "exact":
        return (f"{column} = ?", [value]) if fits(value) else None
    if cond.op == "within":
        if type(value) not in (list, tuple, set, frozenset) or not all(fits(v) for v in value):
            return None
        values = list(dict.fromkeys(value))
        if not values:
            return "0", []
        if len(values) > MAX_PARAMS:
            return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(values)]
        return f"{column} IN ({_marks(len(values))})", values
    if cond.op == AT_LEAST:  # a number column from a number (NULL, like Python's None, never matches)
        return (f"{column} >= ?", [value]) if column_type == "real" and _number(value) else None
    if cond.op == "contains" and column_type == "text" and _text(value):  # case-sensitive substring
        return f"instr({column}, ?) > 0", [value]
    return None


def _all_sql(
    conditions: Sequence[Condition], table: _Table, unindexed: FrozenSet[str]
) -> Optional[Tuple[List[str], List[object]]]:
    """Each condition's SQL and all their parameters, or None when one does not fit."""
    parts: List[str] = []
    params: List[object] = []
    for cond in conditions:
        sql = _condition_sql(cond, table, unindexed)
        if sql is None:
            return None
        parts.append(sql[0])
        params.extend(sql[1])
    return parts, params


def _by_id(where: Where, table: _Table) -> bool:
    """Whether every match of ``where`` is among given rollout ids (an ``exact`` or ``within`` on ``rollout_id``)."""
    if table.table != "rollouts":
        return False
    return any(cond.field == "rollout_id" and cond.op != "contains" for cond in where.conjuncts() or ())


_BY_ID_UNINDEXED = frozenset(("status", "start_time", "end_time"))
"""Columns not looked up in an index when the rollouts are looked up by id: without table statistics SQLite may
otherwise walk, say, the status index over every finished rollout of the store to find the few ids asked for."""


def _where_sql(where: Where, table: _Table) -> Optional[Tuple[str, List[object]]]:
    """The WHERE clause of ``where`` (\"1\" when it has no conditions), or None when one condition does not fit."""
    unindexed = _BY_ID_UNINDEXED if _by_id(where, table) else frozenset()
    must = _all_sql(where.must, table, unindexed)
    pool = _all_sql(where.pooled, table, unindexed)
    if must is None or pool is None:
        return None
    parts, params = must
    if pool[0]:
        joiner = " OR " if where.aggregate == "or" else " AND "
        parts.append("(" + joiner.join(pool[0]) + ")")
    return (" AND ".join(parts) or "1"), params + pool[1]


MAX_STATUS_BRANCHES = 8


def _status_values(where: Where) -> Optional[List[str]]:
    """The statuses of a ``status within`` that every match satisfies, when there are several (up to
    :data:`MAX_STATUS_BRANCHES`); None otherwise."""
    for cond in where.conjuncts() or ():
        if cond.field == "status" and cond.op == "within" and type(cond.value) in (list, tuple, set, frozenset):
            values = list(dict.fromkeys(cond.value))
            if 1 < len(values) <= MAX_STATUS_BRANCHES and all(_text(v) for v in values):
                return values
    return None


def _keys_source(table: _Table, where: Where, sort: Optional[Sort]) -> str:
    """The table to read a page's keys from: with ``INDEXED BY`` its index on the sort column when the page is read
    by key (``at_least`` on that column). The page then starts at the key and ends after ``limit`` matches in index
    order, whatever other filters there are; left to itself SQLite may take a status index instead and sort every
    match after the key, for each page."""
    if sort is None or _by_id(where, table):  # by id: the ids are looked up, not the sort column's index walked
        return table.table
    index = table.keyset_indexes.get(sort.field)
    if index is None or not any(c.field == sort.field and c.op == AT_LEAST for c in where.must):
        return table.table
    return f"{table.table} INDEXED BY {index}"


def _scope(where: Where, table: _Table) -> Optional[str]:
    """The value of the exact condition on ``table.scoped_by`` in ``where.must`` (None: unscoped)."""
    for cond in where.must:
        if cond.field == table.scoped_by and cond.op == "exact" and type(cond.value) is str:
            return cond.value
    return None


MAX_CACHED = 1024
"""Rollouts (and attempts) a connection's :class:`RecordCache` keeps at most."""
MAX_CACHED_BYTES = 16 * 1024 * 1024
"""Bytes of records (their JSON size) a connection's :class:`RecordCache` keeps at most, per kind: large inputs or
metadata never pile up in memory."""

K = TypeVar("K")


def _keep(cache: Dict[K, T], records: Dict[K, T], sizes: Dict[Any, int], new_sizes: Dict[Any, int]) -> int:
    """Add ``records`` to ``cache`` (``sizes`` holds the JSON size of each cached one, from ``new_sizes``), then drop
    the oldest entries past :data:`MAX_CACHED` records or :data:`MAX_CACHED_BYTES`; returns the bytes now cached."""
    cache.update(records)
    total = sizes.get(_TOTAL, 0)
    for key in records:
        size = new_sizes.get(key, 0)
        total += size - sizes.get(key, 0)
        sizes[key] = size
    while cache and (len(cache) > MAX_CACHED or total > MAX_CACHED_BYTES):
        oldest = next(iter(cache))
        del cache[oldest]
        total -= sizes.pop(oldest, 0)
    sizes[_TOTAL] = total
    return total


_TOTAL = object()
"""The key of a size table's running total."""


class RecordCache:
    """The rollouts and attempts one connection's write transactions read or wrote, as of its last commit.

    Valid only while no other connection (thread or process) commits: :meth:`validate`, called right after
    ``BEGIN IMMEDIATE`` (the write lock held, the snapshot current), empties it when ``PRAGMA data_version`` says
    another connection committed since. Whoever rolls back something already absorbed must :meth:`clear` it. Bounded:
    past :data:`MAX_CACHED` records of a kind, the oldest go.
    """

    __slots__ = ("_attempt_sizes", "_rollout_sizes", "_version", "attempts", "counters", "rollouts")

    def __init__(self) -> None:
        self.rollouts: Dict[str, Rollout] = {}
        self.attempts: Dict[Tuple[str, str], Attempt] = {}
        self.counters: Dict[str, List[Any]] = {}
        """Each rollout's span_counters row as [next_id, heartbeat_attempt]: a span write allocates its sequence id
        and records its heartbeat without reading the row."""
        self._rollout_sizes: Dict[Any, int] = {}
        self._attempt_sizes: Dict[Any, int] = {}
        self._version: object = None

    def validate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self.clear()
            self._version = version

    def clear(self) -> None:
        self.rollouts.clear()
        self.attempts.clear()
        self.counters.clear()
        self._rollout_sizes.clear()
        self._attempt_sizes.clear()

    @property
    def cached_bytes(self) -> int:
        """The JSON size of the records kept."""
        return self._rollout_sizes.get(_TOTAL, 0) + self._attempt_sizes.get(_TOTAL, 0)

    def absorb(self, tx: SqliteTransaction) -> None:
        """Keep what a transaction (or savepoint) read and wrote; call once it committed (or was released)."""
        if tx._rollouts:
            _keep(self.rollouts, tx._rollouts, self._rollout_sizes, tx._sizes)
        if tx._attempts:
            _keep(self.attempts, tx._attempts, self._attempt_sizes, tx._sizes)
        if tx._counters:
            counters = self.counters
            counters.update(tx._counters)
            while len(counters) > MAX_CACHED:
                del counters[next(iter(counters))]

    def attempt_size(self, key: Tuple[str, str]) -> int:
        """The JSON size of a cached attempt (0 when not cached)."""
        return self._attempt_sizes.get(key, 0)


class SqliteTransaction:
    """Reads and writes inside the transaction the backend opened on ``conn``.

    ``spans_added`` and ``finished_rollouts`` tell the backend whether retention may have work after this
    transaction.

    Rollouts and attempts read or written here are remembered until the transaction ends, so reading one again
    (the engine re-reads them around a write) costs neither a query nor decoding; like the memory store's, the
    objects handed out are the stored ones, which the engine never mutates (it writes evolved copies). A write
    transaction also reads through ``committed``, its connection's validated :class:`RecordCache` (the backend
    absorbs the transaction into it after the commit): a span write then re-reads neither its rollout nor its attempt.

    A rollout's ``span_counters`` row (next sequence id, span totals, the latest span's heartbeat) is written once,
    by :meth:`flush`, with everything the transaction changed on it: the backend calls it before it commits (or
    releases a write's savepoint); until then the row is read only through this transaction.
    """

    def __init__(self, conn: sqlite3.Connection, committed: Optional[RecordCache] = None) -> None:
        self._conn = conn
        self.spans_added = 0
        self.finished_rollouts = 0
        self._rollouts: Dict[str, Rollout] = {}
        self._attempts: Dict[Tuple[str, str], Attempt] = {}
        self._sizes: Dict[Any, int] = {}
        """JSON size of the records read or written (by rollout id, by (rollout id, attempt id))."""
        self._committed = committed
        self._counters: Dict[str, List[Any]] = {}
        """[next_id, heartbeat_attempt] of the span_counters rows this transaction read or wrote (pending writes
        included)."""
        self._pending: Dict[str, List[Any]] = {}
        """Unwritten changes of span_counters rows: rollout id -> [next_id or 0, spans, bytes, heartbeat attempt id or
        None, heartbeat time]."""

    def _one(self, sql: str, params: Sequence[object] = ()) -> Optional[Tuple[object, ...]]:
        return self._conn.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    def _count(self, table: str) -> int:
        return int(self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    # -- rollouts ----------------------------------------------------------------------------------------------

    def get_rollout(self, rollout_id: str) -> Optional[Rollout]:
        rollout = self._rollouts.get(rollout_id)
        if rollout is None and self._committed is not None:
            rollout = self._committed.rollouts.get(rollout_id)
        if rollout is None:
            row = self._one("SELECT data FROM rollouts WHERE rollout_id = ?", (rollout_id,))
            if row is None:
                return None
            text = str(row[0])
            rollout = self._rollouts[rollout_id] = decode_rollout(text)
            self._sizes[rollout_id] = len(text)
        return rollout

    def insert_rollouts(self, rollouts: Sequence[Rollout]) -> None:
        rows = [(r.rollout_id, r.status, _time(r.start_time), _time(r.end_time), encode(r)) for r in rollouts]
        try:
            self._conn.executemany(
                "INSERT INTO rollouts (rollout_id, status, start_time, end_time, data) VALUES (?, ?, ?, ?, ?)", rows
            )
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"rollout id already stored: {exc}") from exc
        for rollout, row in zip(rollouts, rows, strict=True):
            self._rollouts[rollout.rollout_id] = rollout
            self._sizes[rollout.rollout_id] = len(row[4])

    def update_rollout(self, rollout: Rollout) -> None:
        data = encode(rollout)
        cur = self._conn.execute(
            "UPDATE rollouts SET status = ?, start_time = ?, end_time = ?, data = ? WHERE rollout_id = ?",
            (rollout.status, _time(rollout.start_time), _time(rollout.end_time), data, rollout.rollout_id),
        )
        if cur.rowcount == 0:
            raise ValueError(f"rollout {rollout.rollout_id!r} is not stored")
        self._rollouts[rollout.rollout_id] = rollout
        self._sizes[rollout.rollout_id] = len(data)
        if rollout.status in FINISHED_STATUSES:
            self.finished_rollouts += 1

    def iter_rollouts(
        self, *, status_in: Optional[Sequence[str]] = None, rollout_id_in: Optional[Sequence[str]] = None
    ) -> Iterable[Rollout]:
        status_sql = ""
        status_params: List[object] = []
        if status_in is not None:
            status_sql = f"status IN ({_marks(len(status_in))})"
            status_params = list(status_in)
        if rollout_id_in is None:
            sql = "SELECT data FROM rollouts" + (f" WHERE {status_sql}" if status_sql else "") + " ORDER BY pk"
            return [decode_rollout(row[0]) for row in self._conn.execute(sql, status_params)]
        # one indexed lookup per id, a chunk of ids per query (old SQLite builds bind at most 999 variables), merged
        # in pk order. The status test is written ``+status`` so that it cannot use an index: without it SQLite walks
        # a status index over every rollout of those statuses (all the finished ones, for a poller) for each chunk,
        # a cost that grows with the store instead of with the ids asked for.
        rows: List[Tuple[int, str]] = []
        for chunk in _chunks(list(dict.fromkeys(rollout_id_in))):
            sql = f"SELECT pk, data FROM rollouts WHERE rollout_id IN ({_marks(len(chunk))})"
            if status_sql:
                sql += f" AND +{status_sql}"
            rows.extend(self._conn.execute(sql, [*chunk, *status_params]))
        rows.sort(key=lambda row: row[0])
        return [decode_rollout(data) for _, data in rows]

    def count_rollouts(self) -> int:
        return self._count("rollouts")

    # -- attempts ----------------------------------------------------------------------------------------------

    def insert_attempt(self, attempt: Attempt) -> None:
        data = encode(attempt)
        try:
            self._conn.execute(
                "INSERT INTO attempts (rollout_id, attempt_id, sequence_id, data) VALUES (?, ?, ?, ?)",
                (attempt.rollout_id, attempt.attempt_id, attempt.sequence_id, data),
            )
        except sqlite3.IntegrityError as exc:
            raise ValueError(
                f"attempt {attempt.attempt_id!r} of rollout {attempt.rollout_id!r} already stored"
            ) from exc
        self._attempts[(attempt.rollout_id, attempt.attempt_id)] = attempt
        self._sizes[(attempt.rollout_id, attempt.attempt_id)] = len(data)

    def update_attempt(self, attempt: Attempt) -> None:
        # ``sequence_id`` (indexed) is set only when it changed: setting it would rewrite its index entry too
        data = encode(attempt)
        key = (attempt.rollout_id, attempt.attempt_id)
        cur = self._conn.execute(
            "UPDATE attempts SET data = ? WHERE rollout_id = ? AND attempt_id = ? AND sequence_id = ?",
            (data, *key, attempt.sequence_id),
        )
        if cur.rowcount == 0:
            cur = self._conn.execute(
                "UPDATE attempts SET sequence_id = ?, data = ? WHERE rollout_id = ? AND attempt_id = ?",
                (attempt.sequence_id, data, *key),
            )
        if cur.rowcount == 0:
            raise ValueError(f"attempt {attempt.attempt_id!r} of rollout {attempt.rollout_id!r} is not stored")
        # the row now holds the attempt's heartbeat time: a heartbeat kept for it on span_counters no longer applies
        counter = self._counter(attempt.rollout_id)
        if counter[1] == attempt.attempt_id:
            counter[1] = None
            pending = self._pending.get(attempt.rollout_id)
            if pending is not None:
                pending[3] = pending[4] = None
            self._conn.execute(
                "UPDATE span_counters SET heartbeat_attempt = NULL, heartbeat_time = NULL WHERE rollout_id = ?",
                (attempt.rollout_id,),
            )
        self._attempts[key] = attempt
        self._sizes[key] = len(data)

    def record_heartbeat(self, attempt: Attempt) -> None:
        """Store ``attempt``, which differs from the stored one in ``last_heartbeat_time`` only: the time goes on its
        rollout's span_counters row (written by :meth:`flush`), not into the attempt's row.

        The row keeps the heartbeat of one attempt: while it holds another attempt's (a span of a timed-out attempt
        after its retry began), this one's goes into its own row, as :meth:`update_attempt` writes it."""
        heartbeat = attempt.last_heartbeat_time
        counter = self._counter(attempt.rollout_id)
        if type(heartbeat) is not float or counter[1] not in (None, attempt.attempt_id):  # REAL gives back floats only
            self.update_attempt(attempt)
            return
        counter[1] = attempt.attempt_id
        key = (attempt.rollout_id, attempt.attempt_id)
        pending = self._pend(attempt.rollout_id)
        pending[3] = attempt.attempt_id
        pending[4] = heartbeat
        self._attempts[key] = attempt
        if key not in self._sizes and self._committed is not None:
            self._sizes[key] = self._committed.attempt_size(key)

    def get_attempt(self, rollout_id: str, attempt_id: str) -> Optional[Attempt]:
        key = (rollout_id, attempt_id)
        attempt = self._attempts.get(key)
        if attempt is None and self._committed is not None:
            attempt = self._committed.attempts.get(key)
        if attempt is None:
            row = self._one(
                _ATTEMPT_WITH_HEARTBEAT.format(
                    columns="a.data, c.heartbeat_time", where="a.rollout_id = ? AND a.attempt_id = ?"
                ),
                key,
            )
            if row is None:
                return None
            text = str(row[0])
            attempt = self._attempts[key] = _attempt(text, row[1])  # type: ignore[arg-type]
            self._sizes[key] = len(text)
        return attempt

    def get_attempts(self, rollout_id: str) -> List[Attempt]:
        self.flush()
        rows = self._conn.execute(
            _ATTEMPT_WITH_HEARTBEAT.format(columns="a.data, c.heartbeat_time", where="a.rollout_id = ?")
            + " ORDER BY a.sequence_id",
            (rollout_id,),
        ).fetchall()
        return [_attempt(data, heartbeat) for data, heartbeat in rows]

    def get_latest_attempts(self, rollout_ids: Sequence[str]) -> Dict[str, Attempt]:
        out: Dict[str, Attempt] = {}
        # SQLite returns the bare columns of the row holding MAX() in an aggregate query.
        for chunk in _chunks(list(dict.fromkeys(rollout_ids))):
            rows = self._conn.execute(
                _ATTEMPT_WITH_HEARTBEAT.format(
                    columns="a.rollout_id, a.attempt_id, a.data, MAX(a.sequence_id), c.heartbeat_time",
                    where=f"a.rollout_id IN ({_marks(len(chunk))}) GROUP BY a.rollout_id",
                ),
                chunk,
            ).fetchall()
            for rollout_id, attempt_id, data, _, heartbeat in rows:
                key = (rollout_id, attempt_id)
                attempt = self._attempts.get(key)
                if attempt is None:
                    attempt = self._attempts[key] = _attempt(data, heartbeat)
                    self._sizes[key] = len(data)
                out[rollout_id] = attempt
        return out

    def count_attempts(self) -> int:
        return self._count("attempts")

    # -- queue -------------------------------------------------------------------------------------------------

    def queue_push(self, rollout_ids: Sequence[str]) -> None:
        self._conn.executemany("INSERT OR IGNORE INTO queue (rollout_id) VALUES (?)", [(r,) for r in rollout_ids])

    def queue_pop(self, limit: int) -> List[str]:
        if limit <= 0:
            return []
        rows = self._conn.execute("SELECT pos, rollout_id FROM queue ORDER BY pos LIMIT ?", (limit,)).fetchall()
        if rows:
            self._conn.execute("DELETE FROM queue WHERE pos <= ?", (rows[-1][0],))
        return [row[1] for row in rows]

    def queue_contains(self, rollout_id: str) -> bool:
        return self._one("SELECT 1 FROM queue WHERE rollout_id = ?", (rollout_id,)) is not None

    # -- span sequence counters --------------------------------------------------------------------------------

    def _pend(self, rollout_id: str) -> List[Any]:
        pending = self._pending.get(rollout_id)
        if pending is None:
            pending = self._pending[rollout_id] = [0, 0, 0, None, None]
        return pending

    def _counter(self, rollout_id: str) -> List[Any]:
        """The rollout's span_counters row as this transaction sees it: [next_id, heartbeat_attempt] ([1, None] for a
        rollout without one); the transaction's own copy, to change along with its pending writes."""
        counter = self._counters.get(rollout_id)
        if counter is None:
            committed = None if self._committed is None else self._committed.counters.get(rollout_id)
            if committed is not None:
                counter = list(committed)
            else:
                row = self._one(
                    "SELECT next_id, heartbeat_attempt FROM span_counters WHERE rollout_id = ?", (rollout_id,)
                )
                counter = [1, None] if row is None else list(row)
            self._counters[rollout_id] = counter
        return counter

    def sequence_next(self, rollout_id: str, count: int = 1) -> int:
        counter = self._counter(rollout_id)
        first = int(counter[0])
        counter[0] = self._pend(rollout_id)[0] = first + count
        return first

    def sequence_raise(self, rollout_id: str, value: int) -> None:
        counter = self._counter(rollout_id)
        if value >= counter[0]:  # else reserved before, as tracers do: the row is left as it is
            counter[0] = self._pend(rollout_id)[0] = value + 1

    def flush(self) -> None:
        """Write the pending changes of span_counters rows, one statement per rollout (see the class docstring)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        if len(pending) == 1:  # a write of one rollout's spans, by far the most common
            for rollout_id, changes in pending.items():
                self._conn.execute(COUNTERS_UPSERT, (rollout_id, *changes))
            return
        self._conn.executemany(COUNTERS_UPSERT, [(rollout_id, *changes) for rollout_id, changes in pending.items()])

    # -- spans -------------------------------------------------------------------------------------------------

    def insert_spans(self, spans: Sequence[Span]) -> List[bool]:
        # the totals live on the rollout's narrow span_counters row, written by flush() with the sequence id and the
        # heartbeat; a trigger flags the rollouts row at its first span (schema v2)
        stored: List[bool] = []
        execute = self._conn.execute
        pend = self._pend
        for span in spans:
            data = encode(span)
            size = len(data)
            added = (
                execute(
                    SPAN_INSERT, (span.rollout_id, span.attempt_id, span.span_id, span.sequence_id, size, data)
                ).rowcount
                == 1
            )
            stored.append(added)
            if added:
                pending = pend(span.rollout_id)
                pending[1] += 1
                pending[2] += size
                self.spans_added += 1
        return stored

    def _check_not_evicted(self, rollout_id: str) -> None:
        evicted = self._one("SELECT spans FROM evictions WHERE rollout_id = ?", (rollout_id,))
        if evicted is not None:
            raise SpansEvictedError(
                f"the {evicted[0]} spans of rollout {rollout_id!r} were evicted by the store's retention limits"
            )

    def get_spans(self, rollout_id: str, attempt_id: Optional[str] = None) -> List[Span]:
        self._check_not_evicted(rollout_id)
        # found through a prefix of the spans' only index, then sorted here: SQLite's ORDER BY would sort the rows
        # with their data in a temporary b-tree, a second index would be one more page written per span
        if attempt_id is None:
            rows = self._conn.execute(
                "SELECT sequence_id, pk, data FROM spans WHERE rollout_id = ?", (rollout_id,)
            ).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT sequence_id, pk, data FROM spans WHERE rollout_id = ? AND attempt_id = ?",
                (rollout_id, attempt_id),
            ).fetchall()
        rows.sort(key=_span_order)
        return [decode(row[2], Span) for row in rows]

    def count_spans(self) -> int:
        self.flush()
        return span_totals(self._conn)[0]

    # -- idempotency keys (agentlightning.store.request_keys) ---------------------------------------------------

    def claim_request_key(self, key: str, now: float, result: Optional[bytes]) -> bool:
        cur = self._conn.execute(
            "INSERT INTO request_keys (key, created, result) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING",
            (key, now, result),
        )
        return bool(cur.rowcount)

    def get_request_key(self, key: str) -> Optional[Tuple[float, Optional[int], Optional[bytes], Optional[bytes]]]:
        from agentlightning.store.request_keys import key_record

        row = self._one("SELECT created, status, body, result FROM request_keys WHERE key = ?", (key,))
        return None if row is None else key_record(row)

    def save_request_response(self, key: str, status: int, body: bytes) -> None:
        self._conn.execute("UPDATE request_keys SET status = ?, body = ? WHERE key = ?", (status, body, key))

    def expire_request_keys(self, before: float) -> int:
        return int(self._conn.execute("DELETE FROM request_keys WHERE created < ?", (before,)).rowcount)

    # -- resources ---------------------------------------------------------------------------------------------

    def get_resources(self, resources_id: str) -> Optional[ResourcesUpdate]:
        row = self._one("SELECT data FROM resources WHERE resources_id = ?", (resources_id,))
        return None if row is None else decode(str(row[0]), ResourcesUpdate)

    def put_resources(self, update: ResourcesUpdate) -> None:
        self._conn.execute(
            "INSERT INTO resources (resources_id, written, data) "
            "VALUES (?, (SELECT COALESCE(MAX(written), 0) + 1 FROM resources), ?) "
            "ON CONFLICT (resources_id) DO UPDATE SET written = excluded.written, data = excluded.data",
            (update.resources_id, encode(update)),
        )

    def get_latest_resources(self) -> Optional[ResourcesUpdate]:
        row = self._one("SELECT data FROM resources ORDER BY written DESC LIMIT 1")
        return None if row is None else decode(str(row[0]), ResourcesUpdate)

    def iter_resources(self) -> Iterable[ResourcesUpdate]:
        rows = self._conn.execute("SELECT data FROM resources ORDER BY pk").fetchall()
        return [decode(row[0], ResourcesUpdate) for row in rows]

    def count_resources(self) -> int:
        return self._count("resources")

    # -- workers -----------------------------------------------------------------------------------------------

    def get_worker(self, worker_id: str) -> Optional[Worker]:
        row = self._one("SELECT data FROM workers WHERE worker_id = ?", (worker_id,))
        return None if row is None else decode(str(row[0]), Worker)

    def put_worker(self, worker: Worker) -> None:
        self._conn.execute(
            "INSERT INTO workers (worker_id, data) VALUES (?, ?) "
            "ON CONFLICT (worker_id) DO UPDATE SET data = excluded.data",
            (worker.worker_id, encode(worker)),
        )

    def iter_workers(self) -> Iterable[Worker]:
        rows = self._conn.execute("SELECT data FROM workers ORDER BY pk").fetchall()
        return [decode(row[0], Worker) for row in rows]

    def count_workers(self) -> int:
        return self._count("workers")

    # -- queries (QueryTransaction) ---------------------------------------------------------------------------------

    def _query_parts(self, kind: str, where: Where) -> Optional[Tuple[_Table, str, List[object]]]:
        table = _TABLES.get(kind)
        if table is None:
            return None
        if table.scoped_by is not None:
            rollout_id = _scope(where, table)
            if rollout_id is None:
                return None
            self._check_not_evicted(rollout_id)
        clause = _where_sql(where, table)
        if clause is None:
            return None
        return table, clause[0], clause[1]

    def select(
        self, kind: str, where: Where, sort: Optional[Sort], limit: int, offset: int
    ) -> Optional[Tuple[List[Any], int]]:
        """The page in SQL (see :class:`~agentlightning.store.backend.QueryTransaction`): only the page is decoded."""
        if sort is not None and sort.field not in _TABLES.get(kind, _NO_TABLE).columns:
            return None
        parts = self._query_parts(kind, where)
        if parts is None:
            return None
        table, clause, params = parts
        order = table.base_order
        if sort is not None:
            order = f"{sort.field} {'DESC' if sort.order == 'desc' else 'ASC'}, {order}"
        if limit == -1:
            sql = f"SELECT data FROM {table.table} WHERE {clause} ORDER BY {order} LIMIT -1 OFFSET ?"
            args = [*params, offset]
        else:  # the keys are sorted without the records (which a sort would carry along), then the page is read
            keys, args = f"SELECT pk FROM {_keys_source(table, where, sort)} WHERE {clause}", list(params)
            statuses = (
                _status_values(where) if kind == "rollouts" and sort is None and not _by_id(where, table) else None
            )
            if statuses is not None:
                # one branch per status: SQLite merges their index ranges, already in pk order, instead of sorting
                keys = " UNION ALL ".join([f"{keys} AND status = ?"] * len(statuses))
                args = [arg for status in statuses for arg in (*params, status)]
            sql = (
                f"SELECT data FROM {table.table} WHERE pk IN ({keys} ORDER BY {order} LIMIT {int(limit)} OFFSET ?) "
                f"ORDER BY {order}"
            )
            args.append(offset)
        rows = self._conn.execute(sql, args).fetchall()
        if (limit == -1 or len(rows) < limit) and (rows or offset == 0):
            # the page ended before the limit: the total is known
            return [table.decode(row[0]) for row in rows], offset + len(rows)
        total = self._conn.execute(f"SELECT COUNT(*) FROM {table.table} WHERE {clause}", params).fetchone()[0]
        return [table.decode(row[0]) for row in rows], int(total)

    def count(self, kind: str, where: Where) -> Optional[int]:
        parts = self._query_parts(kind, where)
        if parts is None:
            return None
        table, clause, params = parts
        return int(self._conn.execute(f"SELECT COUNT(*) FROM {table.table} WHERE {clause}", params).fetchone()[0])

    # -- bookkeeping (not part of StorageTransaction) ----------------------------------------------------------

    def counters(self) -> Dict[str, int]:
        """The ``counters`` table, with the span totals as they are now (see :func:`~.schema.span_totals`)."""
        self.flush()
        out = {str(name): int(value) for name, value in self._conn.execute("SELECT name, value FROM counters")}
        out["spans"], out["span_bytes"] = span_totals(self._conn)
        return out
