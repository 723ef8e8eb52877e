"""Plugin hooks: the ``http`` store (client) and store server, the exports and ``agl store``. Imports nothing heavy."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_stores(register: Register) -> None:
    register(
        "http",
        "agentlightning_server.client:LightningStoreClient.from_url",
        description="A LightningStore served over HTTP by `agl store serve` (LightningStoreClient).",
        url_schemes=("http", "https"),
    )


@hookimpl
def agentlightning_register_store_servers(register: Register) -> None:
    register(
        "http",
        "agentlightning_server.server:LightningStoreServer",
        description="Serves a store over HTTP to other processes (LightningStoreServer; clients open its endpoint).",
    )


@hookimpl
def agentlightning_register_exports(register: Register) -> None:
    register("LightningStoreClient", "agentlightning_server.client:LightningStoreClient")
    register("LightningStoreServer", "agentlightning_server.server:LightningStoreServer")


@hookimpl
def agentlightning_register_commands(register: Register) -> None:
    register("store", "agentlightning_server.cli:configure_parser", description="Serve a store over HTTP.")
