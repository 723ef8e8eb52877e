"""Registers the PostgreSQL store (name ``postgres``, URL schemes ``postgresql`` and ``postgres``)."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_stores(register: Register) -> None:
    register(
        "postgres",
        "agentlightning_postgres.store:PostgresLightningStore",
        description="Durable store on a PostgreSQL database shared by many processes and hosts "
        "(URL postgresql://user@host/db).",
        url_schemes=("postgresql", "postgres"),
    )


@hookimpl
def agentlightning_register_exports(register: Register) -> None:
    register("PostgresLightningStore", "agentlightning_postgres.store:PostgresLightningStore")
