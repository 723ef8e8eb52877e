"""Every hook spec is documented in docs/plugins.md with its exact signature."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from agentlightning.plugins import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
HOOKS = [name for name, obj in vars(hookspecs).items() if name.startswith("agentlightning_") and callable(obj)]


@pytest.mark.skipif(not DOC.exists(), reason="docs are not part of an installed distribution")
@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook: str) -> None:
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert f"### {hook}({params})" in DOC.read_text()


def test_every_hook_has_a_docstring() -> None:
    assert HOOKS and all(getattr(hookspecs, h).__doc__ for h in HOOKS)
