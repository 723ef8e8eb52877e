"""Plugin hooks: the ``dashboard`` web app (served by every store server) and ``agl dashboard``. Imports nothing."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_web_apps(register: Register) -> None:
    register(
        "dashboard",
        "agentlightning_dashboard.web:create_web_app",
        description="Rollouts, traces, conversations, resources, runners and rewards of the store, updated live.",
    )


@hookimpl
def agentlightning_register_commands(register: Register) -> None:
    register(
        "dashboard",
        "agentlightning_dashboard.cli:configure_parser",
        description="Open a store (sqlite:///run.db, http://host:port, ...) read-only in the web dashboard.",
    )
