"""Registers the SQLite store (name and URL scheme ``sqlite``) and the top-level ``SqliteLightningStore``."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_stores(register: Register) -> None:
    register(
        "sqlite",
        "agentlightning_sqlite.store:SqliteLightningStore",
        description="Durable multi-process store in one SQLite file (URL sqlite:///run.db).",
        url_schemes=("sqlite",),
    )


@hookimpl
def agentlightning_register_exports(register: Register) -> None:
    register("SqliteLightningStore", "agentlightning_sqlite.store:SqliteLightningStore")
