"""How runner processes reach the store: directly when it is shared across processes, else through HTTP."""

from __future__ import annotations

import logging
import os
import pickle
from typing import TYPE_CHECKING, Any, Optional, Tuple

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

__all__ = ["StoreLink", "link_store"]

logger = logging.getLogger(__name__)


class StoreLink:
    """A picklable recipe that opens, in a runner process, the store the main process uses."""

    def __init__(self, *, url: Optional[str] = None, store: Any = None) -> None:
        if (url is None) == (store is None):
            raise ValueError("StoreLink needs exactly one of url= or store=")
        self.url = url
        self.store = store

    def open(self) -> LightningStore:
        if self.store is not None:
            return self.store
        from agentlightning.store import open_store

        assert self.url is not None
        return open_store(self.url)

    def __repr__(self) -> str:
        return f"StoreLink({self.url or type(self.store).__name__})"


def _server_class() -> Any:
    try:
        from agentlightning_server.server import LightningStoreServer
    except ImportError as exc:
        raise ImportError(
            "Runner processes reach a store that is not shared across processes (such as the memory store) through "
            "the HTTP store server, which agentlightning-server provides: pip install agentlightning-server "
            "(or use a SQLite store: store='sqlite:///run.db', or the in-process strategy)"
        ) from exc
    return LightningStoreServer


def link_store(
    store: LightningStore, *, url: Optional[str] = None, host: str = "127.0.0.1", port: int = 0
) -> Tuple[StoreLink, Any]:
    """A link for runner processes, and the HTTP server started for them (None when none was needed).

    ``url`` is the URL the store was opened with, if any. Stores whose capabilities say ``zero_copy`` (SQLite,
    the HTTP client) are opened again in each process; any other store is served over HTTP from this process.
    """
    if store.capabilities.get("zero_copy"):
        if url is not None and "://" in url and not url.lower().startswith("memory://"):
            return StoreLink(url=url), None
        try:
            pickle.dumps(store)
            return StoreLink(store=store), None
        except Exception:  # noqa: BLE001 - pickling may fail in any way; then the store is served instead
            path = getattr(store, "path", None)
            if isinstance(path, str) and type(store).__name__ == "SqliteLightningStore":
                return StoreLink(url="sqlite:///" + os.path.abspath(path)), None
            logger.info("%s is shared across processes but cannot be pickled; serving it over HTTP", store)
    server = _server_class()(store, host, port)
    server.start()
    logger.info("Serving the %s to runner processes at %s", type(store).__name__, server.endpoint)
    return StoreLink(url=server.endpoint), server
