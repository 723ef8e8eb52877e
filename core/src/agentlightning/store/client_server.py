"""Upstream's module path of the HTTP store server and client (provided by the ``agentlightning-server`` plugin)."""

from __future__ import annotations

from agentlightning._reexport import lazy_exports

__all__ = ["LightningStoreServer", "LightningStoreClient"]  # noqa: F822 (resolved lazily by __getattr__)

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "LightningStoreServer": "agentlightning_server.server:LightningStoreServer",
        "LightningStoreClient": "agentlightning_server.client:LightningStoreClient",
    },
    plugin="server",
)
