"""Properties of the page's own logic, run in the browser on generated input: the span tree holds every span once
and follows parent ids (cycles and missing parents included), and the template diff rebuilds both texts."""

from __future__ import annotations

from typing import Any, Dict, List

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

RUN_TREE = """
const [spans, done] = arguments;
import("./js/spans.js").then((m) => {
  const out = [];
  for (const [node, depth] of m.flatten(m.spanTree(spans))) {
    out.push([node.span.span_id, depth, node.children.map((c) => c.span.span_id), node.orphan]);
  }
  done(out);
}, (e) => done(String(e)));
"""

RUN_DIFF = """
const [before, after, done] = arguments;
import("./js/diff.js").then((m) => done(m.diffWords(before, after)), (e) => done(String(e)));
"""

IDS = st.sampled_from([f"s{i}" for i in range(12)])


def _span(span_id: str, parent_id: Any, n: int) -> Dict[str, Any]:
    return {"span_id": span_id, "parent_id": parent_id, "start_time": 0, "sequence_id": n}


@st.composite
def span_sets(draw: Any) -> List[Dict[str, Any]]:
    ids = draw(st.lists(IDS, unique=True, max_size=10))
    parents = st.one_of(st.none(), IDS, st.just("not-stored"))
    return [
        {"span_id": i, "parent_id": draw(parents), "start_time": draw(st.integers(0, 5)), "sequence_id": n}
        for n, i in enumerate(ids)
    ]


def _on_a_cycle(span_id: str, parent: Dict[str, Any]) -> bool:
    """Whether following parent ids from ``span_id`` comes back to it."""
    seen, current = set(), parent.get(span_id)
    while current is not None and current in parent and current not in seen:
        if current == span_id:
            return True
        seen.add(current)
        current = parent[current]
    return current == span_id


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spans=span_sets())
@example(spans=[_span("s2", "s0", 0), _span("s0", "s1", 1), _span("s1", "s0", 2), _span("s3", "s3", 3)])
def test_span_tree_holds_every_span_once_under_its_parent(dashboard_page: Any, spans: List[Dict[str, Any]]) -> None:
    rows = dashboard_page.execute_async_script(RUN_TREE, spans)
    assert isinstance(rows, list), rows
    assert sorted(r[0] for r in rows) == sorted(s["span_id"] for s in spans)  # each exactly once
    parent = {s["span_id"]: s["parent_id"] for s in spans}
    tree_parent = {child: span_id for span_id, _, children, _ in rows for child in children}
    for span_id, depth, _, orphan in rows:
        if span_id in tree_parent:
            assert tree_parent[span_id] == parent[span_id] and depth > 0
        else:  # a root: no parent, a parent not stored, or the place where a parent-id cycle was cut
            assert depth == 0
            given_parent = parent[span_id]
            assert given_parent is None or given_parent not in parent or _on_a_cycle(span_id, parent)
            assert orphan == (given_parent is not None)


WORDS = st.lists(st.sampled_from(["a", "b", "c", "{q}", " ", "\n", "  "]), max_size=30).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=WORDS, after=WORDS)
def test_template_diff_rebuilds_both_texts(dashboard_page: Any, before: str, after: str) -> None:
    parts = dashboard_page.execute_async_script(RUN_DIFF, before, after)
    assert isinstance(parts, list), parts
    assert "".join(p["text"] for p in parts if p["op"] != "add") == before
    assert "".join(p["text"] for p in parts if p["op"] != "del") == after
    if before == after:
        assert all(p["op"] == "same" for p in parts)
