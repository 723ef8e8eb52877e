"""Components that ship with core, registered through the same hooks as any plugin."""

from __future__ import annotations

from typing import Any

from agentlightning.plugins import hookimpl


@hookimpl
def agentlightning_register_exports(register: Any) -> None:
    """Nothing yet: core's own public names are imported directly."""
