"""Registers the in-memory store (name and URL scheme ``memory``) and the top-level ``InMemoryLightningStore``."""

from __future__ import annotations

from typing import Any

from agentlightning.plugins import hookimpl


@hookimpl
def agentlightning_register_stores(register: Any) -> None:
    register(
        "memory",
        "agentlightning_memory.store:InMemoryLightningStore",
        description="In-process store over dicts, with a bounded span budget (URL memory://).",
        url_schemes=("memory",),
    )


@hookimpl
def agentlightning_register_exports(register: Any) -> None:
    register("InMemoryLightningStore", "agentlightning_memory.store:InMemoryLightningStore")
