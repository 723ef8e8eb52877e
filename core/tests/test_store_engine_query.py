"""Query semantics (agentlightning.store.query) against a naive reference, with hypothesis."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import attrs
import pytest
from agentlightning.store.errors import InvalidRequestError
from agentlightning.store.query import normalize_filters, run_query
from hypothesis import given, settings
from hypothesis import strategies as st


@attrs.define
class Item:
    key: int
    name: Optional[str]
    tags: Optional[List[str]]
    score: Optional[int]


NAMES = st.one_of(st.none(), st.sampled_from(["alpha", "beta", "Alpha", "gamma", "alphabet", ""]))
items_strategy = st.lists(
    st.builds(
        Item,
        key=st.integers(0, 5),
        name=NAMES,
        tags=st.one_of(st.none(), st.lists(st.sampled_from(["a", "b", "c"]), max_size=3)),
        score=st.one_of(st.none(), st.integers(-3, 3)),
    ),
    max_size=12,
)
field_filter = st.one_of(
    st.fixed_dictionaries({"name": st.fixed_dictionaries({"contains": st.sampled_from(["al", "A", "ph", "zz"])})}),
    st.fixed_dictionaries({"name": st.fixed_dictionaries({"exact": NAMES})}),
    st.fixed_dictionaries({"key": st.fixed_dictionaries({"within": st.lists(st.integers(0, 5), max_size=3)})}),
    st.fixed_dictionaries({"tags": st.fixed_dictionaries({"contains": st.sampled_from(["a", "b"])})}),
    st.fixed_dictionaries({"score": st.fixed_dictionaries({"exact": st.integers(-3, 3)})}),
)


def naive_test(item: Item, field: str, op: str, expected: Any) -> bool:
    actual = getattr(item, field)
    if op == "exact":
        return actual == expected
    if op == "within":
        return actual in expected
    if actual is None:
        return False
    return expected in actual


def naive_query(
    items: List[Item], filters: Dict[str, Any], sort_by: Optional[str], order: str, limit: int, offset: int
):
    logic = filters.get("_aggregate", "and")
    pooled = [
        (field, op, value)
        for field, spec in filters.items()
        if not field.startswith("_")
        for op, value in spec.items()
        if value is not None
    ]
    must = [
        (f, op, v)
        for entry in filters.get("_must", [])
        for f, spec in entry.items()
        for op, v in spec.items()
        if v is not None
    ]
    out = []
    for item in items:
        if not all(naive_test(item, *c) for c in must):
            continue
        results = [naive_test(item, *c) for c in pooled]
        if not pooled or (any(results) if logic == "or" else all(results)):
            out.append(item)
    if sort_by is not None:
        keys = {getattr(i, sort_by) for i in out}
        ordered_keys = ([None] if None in keys else []) + sorted(k for k in keys if k is not None)
        if order == "desc":
            ordered_keys.reverse()
        out = [i for k in ordered_keys for i in out if getattr(i, sort_by) == k]
    total = len(out)
    page = out[offset:] if limit == -1 else out[offset : offset + limit]
    return page, total


@settings(max_examples=300, deadline=None)
@given(
    items=items_strategy,
    conditions=st.lists(field_filter, max_size=3),
    must=st.lists(field_filter, max_size=1),
    logic=st.sampled_from(["and", "or"]),
    sort_by=st.sampled_from([None, "key", "name", "score"]),
    order=st.sampled_from(["asc", "desc"]),
    limit=st.integers(-1, 5),
    offset=st.integers(0, 6),
)
def test_query_matches_naive_reference(items, conditions, must, logic, sort_by, order, limit, offset) -> None:
    filters: Dict[str, Any] = {"_aggregate": logic}
    for condition in conditions:
        for field, spec in condition.items():
            filters.setdefault(field, {}).update(spec)
    if must:
        filters["_must"] = must
    result = run_query(
        items, model=Item, filters=filters, sort_by=sort_by, sort_order=order, limit=limit, offset=offset
    )
    expected, total = naive_query(items, filters, sort_by, order, limit, offset)
    assert result.total == total
    assert [id(i) for i in result.items] == [id(i) for i in expected]
    assert (result.limit, result.offset) == (limit, offset)


def test_or_without_filters_returns_everything() -> None:
    items = [Item(key=i, name=None, tags=None, score=None) for i in range(3)]
    assert run_query(items, model=Item, filters={"_aggregate": "or", "name": {"exact": None}}).total == 3


def test_must_is_anded_in_front_of_or() -> None:
    items = [Item(key=k, name=n, tags=None, score=None) for k, n in [(1, "a"), (2, "a"), (1, "b")]]
    result = run_query(
        items,
        model=Item,
        filters={"_aggregate": "or", "_must": {"key": {"exact": 1}}, "name": {"exact": "a"}, "score": {"exact": 9}},
    )
    assert [(i.key, i.name) for i in result] == [(1, "a")]


def test_nulls_sort_first_ascending_and_last_descending() -> None:
    items = [Item(key=i, name=n, tags=None, score=None) for i, n in enumerate(["b", None, "a"])]
    assert [i.name for i in run_query(items, model=Item, sort_by="name")] == [None, "a", "b"]
    assert [i.name for i in run_query(items, model=Item, sort_by="name", sort_order="desc")] == ["b", "a", None]


def test_contains_is_case_sensitive() -> None:
    items = [Item(key=0, name="Alpha", tags=None, score=None)]
    assert run_query(items, model=Item, filters={"name": {"contains": "alp"}}).total == 0
    assert run_query(items, model=Item, filters={"name": {"contains": "Alp"}}).total == 1


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"limit": -2}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"offset": -1}, "offset"),
        ({"sort_by": "nope"}, "nope"),
        ({"sort_order": "up"}, "sort_order"),
        ({"filters": {"_aggregate": "xor"}}, "filter_logic"),
        ({"filters": {"name": {"like": "a"}}}, "like"),
        ({"filters": {"name": "a"}}, "name"),
        ({"filters": {"key": {"within": "abc"}}}, "within"),
        ({"filters": {"_must": [{"key": {"exact": 1}}, {"key": {"exact": 2}}]}}, "more than once"),
    ],
)
def test_bad_requests_name_what_is_wrong(kwargs: Dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidRequestError, match=fragment):
        run_query([], model=Item, **kwargs)


def test_normalize_splits_pool_must_and_aggregate() -> None:
    pooled, must, aggregate = normalize_filters(
        {"_aggregate": "or", "_must": [{"key": {"exact": 1}}], "name": {"contains": "a", "exact": None}}
    )
    assert [(c.field, c.op) for c in pooled] == [("name", "contains")]
    assert [(c.field, c.op, c.value) for c in must] == [("key", "exact", 1)]
    assert aggregate == "or"
