"""UNSET, the "not given" marker of the store's update methods."""

from __future__ import annotations

import copy
import pickle

import agentlightning as agl
from agentlightning.store import UNSET, Unset, is_unset


def test_unset_is_one_falsy_value_that_survives_copies() -> None:
    assert agl.UNSET is UNSET is Unset.UNSET
    assert list(Unset) == [UNSET]
    assert pickle.loads(pickle.dumps(UNSET)) is UNSET
    assert copy.deepcopy(UNSET) is UNSET and copy.copy(UNSET) is UNSET
    assert not UNSET and repr(UNSET) == "UNSET"
    assert is_unset(UNSET) and not is_unset(None) and not is_unset("UNSET")
