"""Registers the SQLite store (name and URL scheme ``sqlite``) and the top-level ``SqliteLightningStore``."""

from __future__ import annotations

from typing import Any

from agentlightning.plugins import hookimpl


@hookimpl
def agentlightning_register_stores(register: Any) -> None:
    register(
        "sqlite",
        "agentlightning_sqlite.store:SqliteLightningStore",
        description="Durable multi-process store in one SQLite file (URL sqlite:///run.db).",
        url_schemes=("sqlite",),
    )


@hookimpl
def agentlightning_register_exports(register: Any) -> None:
    register("SqliteLightningStore", "agentlightning_sqlite.store:SqliteLightningStore")
