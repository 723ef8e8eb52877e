"""Serve any agentlightning store over HTTP and talk to it with :class:`LightningStoreClient`.

The heavy parts (starlette, uvicorn, httpx) load only when the server or the client is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .client import LightningStoreClient
    from .server import LightningStoreServer

__all__ = ["LightningStoreClient", "LightningStoreServer", "create_app"]

_LAZY = {
    "LightningStoreClient": "agentlightning_server.client",
    "LightningStoreServer": "agentlightning_server.server",
    "create_app": "agentlightning_server.app",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentlightning_server' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
