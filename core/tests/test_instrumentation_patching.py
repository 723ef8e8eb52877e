"""PatchSet: reference-counted patches that restore exactly what was there."""

from __future__ import annotations

from typing import Any

import pytest
from agentlightning.instrumentation.patching import PatchSet


class Base:
    def inherited(self) -> str:
        return "base"


class Target(Base):
    def own(self) -> str:
        return "own"


def _shout(original: Any) -> Any:
    return lambda self: original(self).upper()


def test_first_install_patches_last_uninstall_restores() -> None:
    patches = PatchSet()
    original_own = Target.__dict__["own"]

    def apply(p: PatchSet) -> None:
        p.patch(Target, "own", _shout)
        p.patch(Target, "inherited", _shout)

    patches.install(apply)
    patches.install(apply)  # a second user: nothing is patched twice
    assert patches.active and Target().own() == "OWN" and Target().inherited() == "BASE"
    patches.uninstall()
    assert patches.active and Target().own() == "OWN"
    patches.uninstall()
    assert not patches.active
    assert Target.__dict__["own"] is original_own
    assert "inherited" not in Target.__dict__ and Target().inherited() == "base"  # inherited again, not shadowed
    patches.uninstall()  # one too many: nothing happens
    assert not patches.active


def test_a_failing_apply_restores_what_it_patched_and_counts_nobody() -> None:
    patches = PatchSet()

    def apply(p: PatchSet) -> None:
        p.patch(Target, "own", _shout)
        raise RuntimeError("second target missing")

    with pytest.raises(RuntimeError, match="second target missing"):
        patches.install(apply)
    assert not patches.active and Target().own() == "own"
