"""Query semantics shared by every store: filters, sorting (with a fixed null order) and pagination.

Filters follow upstream's ``FilterOptions``: ``{field: {"exact"|"within"|"contains": value}, "_aggregate": "and"|"or",
"_must": {...} or [{...}, ...]}``. Every condition of every regular field goes into one pool combined with
``_aggregate``; ``_must`` conditions are always ANDed in front. Deliberate choices (see ``docs/store.md``):

- an operator whose expected value is ``None`` is ignored; a pool with no conditions matches everything, under "or"
  too (upstream's in-memory store matched nothing there);
- ``contains`` is case-sensitive substring for two strings, else element/key membership;
- sorting puts ``None`` before every value (first in "asc", last in "desc") for every field; the sort is stable in
  both directions: items with equal keys keep the kind's base order (see :data:`BASE_ORDER`).

:func:`select` answers a query through the backend transaction's ``select``/``count`` when it has them (pushed down
into SQL or an index) and through :func:`run_query` over decoded records otherwise; both give the same answer.
"""

from __future__ import annotations

import collections.abc
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
)

import attrs

from agentlightning.types.core import PaginatedResult

from .errors import InvalidRequestError

__all__ = [
    "OPERATORS",
    "AT_LEAST",
    "Condition",
    "normalize_filters",
    "matches",
    "check_page",
    "check_logic",
    "sort_items",
    "paginate",
    "run_query",
    "Where",
    "Sort",
    "BASE_ORDER",
    "select",
]

T = TypeVar("T")

OPERATORS = ("exact", "within", "contains")
"""The operators a caller's filters may use."""

AT_LEAST = "at_least"
"""An operator stores build themselves, never read from a caller's filters: ``field >= value`` (a ``None`` field or
values that do not compare: no match). ``query_rollouts(start_time_from=...)`` is one."""


@attrs.frozen
class Condition:
    """One test ``field <op> value``."""

    field: str
    op: str
    value: Any

    def test(self, item: Any) -> bool:
        actual = getattr(item, self.field, None)
        expected = self.value
        try:
            if self.op == "exact":
                return bool(actual == expected)
            if self.op == "within":
                return actual in expected
            if self.op == AT_LEAST:
                return actual is not None and bool(actual >= expected)
            if actual is None:
                return False
            if isinstance(actual, str) and isinstance(expected, str):
                return expected in actual
            return expected in actual
        except TypeError:
            return False


def check_logic(logic: Any) -> str:
    if logic not in ("and", "or"):
        raise InvalidRequestError(f"filter_logic must be 'and' or 'or', got {logic!r}")
    return str(logic)


def _field_conditions(field: str, spec: Any, where: str) -> List[Condition]:
    if type(spec) is not dict and not isinstance(spec, collections.abc.Mapping):  # a dict without the ABC's check
        raise InvalidRequestError(f"filter for field {field!r}{where} must be a mapping of operators, got {spec!r}")
    out: List[Condition] = []
    for op, value in spec.items():
        if op not in OPERATORS:
            raise InvalidRequestError(
                f"unknown filter operator {op!r} for field {field!r}{where}; expected one of {', '.join(OPERATORS)}"
            )
        if value is None:
            continue
        if op == "within" and isinstance(value, (str, bytes)):
            raise InvalidRequestError(f"'within' for field {field!r}{where} needs a collection, got a string")
        out.append(Condition(field, op, value))
    return out


def normalize_filters(filters: Optional[Mapping[str, Any]]) -> Tuple[List[Condition], List[Condition], str]:
    """Split ``FilterOptions`` into (pooled conditions, must conditions, aggregate)."""
    if not filters:
        return [], [], "and"
    if type(filters) is not dict and not isinstance(filters, collections.abc.Mapping):
        raise InvalidRequestError(f"filters must be a mapping, got {type(filters).__name__}")
    aggregate = check_logic(filters.get("_aggregate", "and"))
    pooled: List[Condition] = []
    must: List[Condition] = []
    for field, spec in filters.items():
        if field == "_aggregate":
            continue
        if field == "_must":
            entries = [spec] if isinstance(spec, collections.abc.Mapping) else list(spec or [])
            seen: set[Tuple[str, str]] = set()
            for entry in entries:
                if not isinstance(entry, collections.abc.Mapping):
                    raise InvalidRequestError(f"_must entries must be mappings, got {entry!r}")
                for must_field, must_spec in entry.items():
                    for cond in _field_conditions(must_field, must_spec, " in _must"):
                        if (cond.field, cond.op) in seen:
                            raise InvalidRequestError(
                                f"_must gives operator {cond.op!r} for field {cond.field!r} more than once"
                            )
                        seen.add((cond.field, cond.op))
                        must.append(cond)
            continue
        pooled.extend(_field_conditions(field, spec, ""))
    return pooled, must, aggregate


def matches(item: Any, pooled: Sequence[Condition], must: Sequence[Condition], aggregate: str) -> bool:
    """Whether ``item`` passes every must condition and the pool (an empty pool passes)."""
    for cond in must:
        if not cond.test(item):
            return False
    if not pooled:
        return True
    if aggregate == "or":
        return any(cond.test(item) for cond in pooled)
    return all(cond.test(item) for cond in pooled)


def check_page(limit: Any, offset: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < -1:
        raise InvalidRequestError(f"limit must be an integer >= -1 (-1: no limit), got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidRequestError(f"offset must be an integer >= 0, got {offset!r}")


def _sort_key(field: str) -> Callable[[Any], Tuple[int, Any]]:
    def key(item: Any) -> Tuple[int, Any]:
        value = getattr(item, field, None)
        return (0, 0) if value is None else (1, value)

    return key


_FIELD_NAMES: Dict[type, FrozenSet[str]] = {}


def _field_names(model: Type[Any]) -> FrozenSet[str]:
    names = _FIELD_NAMES.get(model)
    if names is None:
        names = _FIELD_NAMES[model] = frozenset(a.name for a in attrs.fields(model))
    return names


def _check_sort_field(sort_by: str, model: Type[Any]) -> None:
    names = _field_names(model)
    if sort_by not in names:
        raise InvalidRequestError(
            f"Invalid sort_by: {sort_by}, allowed fields are: {', '.join(sorted(names))} ({model.__name__})"
        )


def sort_items(items: List[T], sort_by: Optional[str], sort_order: str, model: Type[Any]) -> List[T]:
    """Stable sort by a field of ``model``; ``None`` sorts before every value."""
    if sort_order not in ("asc", "desc"):
        raise InvalidRequestError(f"sort_order must be 'asc' or 'desc', got {sort_order!r}")
    if sort_by is None:
        return items
    _check_sort_field(sort_by, model)
    try:
        keys = [getattr(item, sort_by, None) for item in items]
        if any(k is None for k in keys):
            return sorted(items, key=_sort_key(sort_by), reverse=sort_order == "desc")
        # no None: sort positions by the bare values (no key tuples; nearly free on input already in order)
        order = sorted(range(len(keys)), key=keys.__getitem__, reverse=sort_order == "desc")  # type: ignore[arg-type]
        return [items[i] for i in order]
    except TypeError as exc:
        raise InvalidRequestError(f"cannot sort {model.__name__} by {sort_by!r}: values are not comparable") from exc


def paginate(items: Sequence[T], limit: int, offset: int) -> PaginatedResult[T]:
    end = None if limit == -1 else offset + limit
    return PaginatedResult(items=list(items[offset:end]), limit=limit, offset=offset, total=len(items))


def _checked(
    filters: Optional[Mapping[str, Any]], sort_by: Optional[str], sort_order: str, limit: int, offset: int, model: Any
) -> Tuple[List[Condition], List[Condition], str]:
    """Validate a query's arguments; returns its parsed filters (see :func:`normalize_filters`)."""
    check_page(limit, offset)
    if sort_order not in ("asc", "desc"):
        raise InvalidRequestError(f"sort_order must be 'asc' or 'desc', got {sort_order!r}")
    parsed = normalize_filters(filters)
    if sort_by is not None:
        _check_sort_field(sort_by, model)
    return parsed


def run_query(
    items: Iterable[T],
    *,
    model: Type[Any],
    filters: Optional[Mapping[str, Any]] = None,
    sort_by: Optional[str] = None,
    sort_order: str = "asc",
    limit: int = -1,
    offset: int = 0,
) -> PaginatedResult[T]:
    """Filter, sort and page ``items`` (validating every argument first)."""
    pooled, must, aggregate = _checked(filters, sort_by, sort_order, limit, offset, model)
    selected = [item for item in items if matches(item, pooled, must, aggregate)] if pooled or must else list(items)
    return paginate(sort_items(selected, sort_by, sort_order, model), limit, offset)


BASE_ORDER: Dict[str, str] = {
    "rollouts": "insertion order",
    "attempts": "sequence_id ascending",
    "spans": "sequence_id ascending, then insertion order",
    "resources": "order of first insertion (a replaced update keeps its place)",
    "workers": "order of first insertion (a replaced worker keeps its place)",
}
"""The order of each kind's records before sorting; ties of a sort keep it (ascending, in both sort directions)."""


@attrs.frozen
class Where:
    """Parsed filters: every ``must`` condition, and the ``pooled`` ones combined with ``aggregate`` (an empty pool
    passes). A scope (the rollout of ``query_spans``) arrives as ``exact`` conditions in ``must``."""

    pooled: Tuple[Condition, ...] = ()
    must: Tuple[Condition, ...] = ()
    aggregate: str = "and"

    def test(self, item: Any) -> bool:
        return matches(item, self.pooled, self.must, self.aggregate)

    def conjuncts(self) -> Optional[Tuple[Condition, ...]]:
        """All conditions when the filter is a plain AND of them (an "or" pool of one counts), else None."""
        if self.aggregate == "or" and len(self.pooled) > 1:
            return None
        return self.must + self.pooled


@attrs.frozen
class Sort:
    """Sort by ``field`` (a field of the kind's model), ``order`` "asc" or "desc"; ``None`` sorts before values."""

    field: str
    order: str


def select(
    tx: Any,
    kind: str,
    candidates: Callable[[], Iterable[T]],
    *,
    model: Type[Any],
    filters: Optional[Mapping[str, Any]] = None,
    scope: Sequence[Condition] = (),
    sort_by: Optional[str] = None,
    sort_order: str = "asc",
    limit: int = -1,
    offset: int = 0,
) -> PaginatedResult[T]:
    """Answer a query of ``kind`` inside transaction ``tx``: pushed down when ``tx`` has ``select``/``count`` and they
    can express it (they return ``None`` when not), else :func:`run_query` over ``candidates()``.

    ``scope`` are conditions the candidates already satisfy (``query_spans``' rollout and attempt, the start time of
    ``query_rollouts(start_time_from=...)``); they are handed to the backend with the filters, not re-tested on the
    fallback path.
    """
    pooled, must, aggregate = _checked(filters, sort_by, sort_order, limit, offset, model)
    where = Where(tuple(pooled), (*scope, *must), aggregate)
    if limit == 0:
        count = getattr(tx, "count", None)
        total = count(kind, where) if count is not None else None
        if total is not None:
            return PaginatedResult(items=[], limit=limit, offset=offset, total=total)
    pushed = getattr(tx, "select", None)
    if pushed is not None:
        answer = pushed(kind, where, None if sort_by is None else Sort(sort_by, sort_order), limit, offset)
        if answer is not None:
            rows, total = answer
            return PaginatedResult(items=list(rows), limit=limit, offset=offset, total=total)
    return run_query(
        candidates(),
        model=model,
        filters=filters,
        sort_by=sort_by,
        sort_order=sort_order,
        limit=limit,
        offset=offset,
    )
