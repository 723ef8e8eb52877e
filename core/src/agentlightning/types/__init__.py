"""The data model: attrs classes, status literals and their JSON converter."""

from .core import *  # noqa: F403
from .core import __all__ as _core_all
from .legacy import *  # noqa: F403
from .legacy import __all__ as _legacy_all
from .resources import *  # noqa: F403
from .resources import __all__ as _resources_all
from .serialization import (
    ValidationError,
    from_dict,
    from_json,
    resources_from_dict,
    resources_to_dict,
    rollout_from_dict,
    to_dict,
    to_json,
)
from .tracer import *  # noqa: F403
from .tracer import __all__ as _tracer_all

__all__ = [
    *_core_all,
    *_resources_all,
    *_tracer_all,
    *_legacy_all,
    "ValidationError",
    "from_dict",
    "from_json",
    "to_dict",
    "to_json",
    "rollout_from_dict",
    "resources_from_dict",
    "resources_to_dict",
]


def __getattr__(name: str) -> object:
    """Upstream v0.3 names at this path that load on first use: ``SpanLike`` and the runner's ``Hook``."""
    if name == "SpanLike":
        from . import tracer

        return tracer.SpanLike
    if name == "Hook":
        from agentlightning.runner.hooks import Hook

        return Hook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
