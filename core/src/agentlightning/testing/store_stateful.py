"""The former home of the store state machine; it now lives in :mod:`agentlightning.testing.store.stateful`."""

from __future__ import annotations

from .store.stateful import *  # noqa: F403
from .store.stateful import ModelAttempt, ModelRollout
from .store.stateful import __all__ as _stateful_all

__all__ = [*_stateful_all, "ModelAttempt", "ModelRollout"]
