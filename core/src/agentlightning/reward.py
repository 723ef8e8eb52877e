"""Deprecated: use :mod:`agentlightning.emitter` (``emit_reward``, ``get_reward_value``, ...)."""

from __future__ import annotations

import warnings

from agentlightning.emitter.reward import *  # noqa: F403
from agentlightning.emitter.reward import __all__ as __all__  # noqa: PLC0414

warnings.warn(
    "agentlightning.reward is deprecated; import from agentlightning.emitter instead", DeprecationWarning, stacklevel=2
)
