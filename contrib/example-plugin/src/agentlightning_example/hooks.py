"""Hook implementations: light on purpose. Nothing here imports the implementation modules."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_stores(register: Register) -> None:
    register(
        "counting",
        "agentlightning_example.store:CountingStore.from_url",
        description="Wraps another store and counts the calls made to it.",
        url_schemes=("counting",),
    )


@hookimpl
def agentlightning_register_exports(register: Register) -> None:
    register("CountingStore", "agentlightning_example.store:CountingStore")


@hookimpl
def agentlightning_register_commands(register: Register) -> None:
    register("example-stats", "agentlightning_example.command:configure", description="Print a store's statistics.")
