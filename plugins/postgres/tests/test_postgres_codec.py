"""The record codec's JSON text: whatever path writes or reads it, the values are the stdlib ``json``'s."""

from __future__ import annotations

import json
from typing import Any

from agentlightning_postgres import codec
from hypothesis import given, settings
from hypothesis import strategies as st

_stdlib = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@settings(max_examples=400)
@given(values)
def test_text_is_ascii_and_reads_back_as_the_stdlib_value(value: Any) -> None:
    text = codec._dumps(value)
    assert text.isascii()  # no NUL, no lone surrogate, valid in any server encoding
    expected = _canonical(json.loads(_stdlib(value)))
    assert _canonical(json.loads(text)) == expected
    assert _canonical(codec._loads(text)) == expected


def test_values_orjson_would_change_keep_the_stdlib_text() -> None:
    for value in ({"x": float("nan")}, [float("inf")], {"n": 2**70}, {"n": -(2**63) - 1}, "\ud800", "caf\u00e9"):
        assert codec._dumps(value) == _stdlib(value)
        assert _canonical(codec._loads(_stdlib(value))) == _canonical(json.loads(_stdlib(value)))
