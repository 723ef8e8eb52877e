"""Registers the in-memory store (name and URL scheme ``memory``) and the top-level ``InMemoryLightningStore``."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_stores(register: Register) -> None:
    register(
        "memory",
        "agentlightning_memory.store:InMemoryLightningStore",
        description="In-process store over dicts, with a bounded span budget (URL memory://).",
        url_schemes=("memory",),
    )


@hookimpl
def agentlightning_register_exports(register: Register) -> None:
    register("InMemoryLightningStore", "agentlightning_memory.store:InMemoryLightningStore")
