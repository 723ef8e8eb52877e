"""How runner processes reach the store: directly when it is shared across processes, else through a store server.

Core names no store or server: a store says it can be opened by another process through its capabilities
(``zero_copy``) and :meth:`~agentlightning.LightningStore.reopen_url`; any other store is served by a store server
that a plugin registers (hook ``agentlightning_register_store_servers``).
"""

from __future__ import annotations

import abc
import logging
import pickle
from typing import TYPE_CHECKING, Any, Optional, Tuple

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

__all__ = ["StoreLink", "StoreServer", "link_store"]

logger = logging.getLogger(__name__)

DEFAULT_STORE_SERVER = "http"
"""The store server :func:`link_store` uses unless told otherwise (the protocol its URLs speak)."""


class StoreServer(abc.ABC):
    """What a store server factory builds: ``factory(store, host=..., port=...)`` serves ``store`` once started.

    Any class with ``start``, ``stop`` and ``endpoint`` counts as one (no need to subclass).
    """

    @property
    @abc.abstractmethod
    def endpoint(self) -> str:
        """A URL that ``open_store`` resolves, in another process, to a client of the served store."""

    @abc.abstractmethod
    def start(self) -> Any:
        """Start serving (returns once requests are accepted)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop serving; safe to call twice."""

    @classmethod
    def __subclasshook__(cls, other: type) -> Any:
        if cls is StoreServer:
            members = ("endpoint", "start", "stop")
            if all(any(member in vars(base) for base in other.__mro__) for member in members):
                return True
        return NotImplemented


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


def _shared_link(store: LightningStore, url: Optional[str]) -> Optional[StoreLink]:
    """A link that opens ``store`` itself in another process, if it is shared across processes (zero_copy)."""
    if not store.capabilities.get("zero_copy"):
        return None
    if url is not None and "://" in url and not url.lower().startswith("memory://"):
        return StoreLink(url=url)
    reopen_url = store.reopen_url()
    if reopen_url is not None:
        return StoreLink(url=reopen_url)
    try:
        pickle.dumps(store)
        return StoreLink(store=store)
    except Exception:  # noqa: BLE001 - pickling may fail in any way; then the store is served instead
        logger.info("%s is shared across processes but cannot be pickled nor reopened by URL; serving it", store)
        return None


def create_store_server(
    store: LightningStore, *, name: str = DEFAULT_STORE_SERVER, host: str = "127.0.0.1", port: int = 0
) -> StoreServer:
    """Build (not start) the store server registered as ``name`` for ``store``; a clear error if none is."""
    from agentlightning.plugins import STORE_SERVERS, UnknownComponentError, get_plugin_manager

    manager = get_plugin_manager()
    try:
        registration = manager.get(STORE_SERVERS, name)
    except UnknownComponentError as exc:
        raise UnknownComponentError(
            f"Runner processes reach the {type(store).__name__}, which other processes cannot open, through a store "
            f"server, but {exc}. Alternatively use a store that other processes can open (capabilities zero_copy) "
            "or the in-process execution strategy"
        ) from None
    return registration.create(store, host=host, port=port)


def announce_web_apps(store_server: StoreServer) -> None:
    """Print where a started store server serves web apps (``dashboard at http://127.0.0.1:PORT/dashboard/`` when
    the dashboard plugin is installed): servers that serve any list them in ``web_app_urls``."""
    for name, url in dict(getattr(store_server, "web_app_urls", None) or {}).items():
        print(f"{name} at {url}", flush=True)


def link_store(
    store: LightningStore,
    *,
    url: Optional[str] = None,
    host: str = "127.0.0.1",
    port: int = 0,
    server: str = DEFAULT_STORE_SERVER,
) -> Tuple[StoreLink, Optional[StoreServer]]:
    """A link for runner processes, and the store server started for them (None when none was needed).

    ``url`` is the URL the store was opened with, if any. A store whose capabilities say ``zero_copy`` is opened
    again in each process (by ``url``, by its :meth:`~agentlightning.LightningStore.reopen_url`, or pickled); any
    other store is served from this process by the store server registered as ``server``.
    """
    link = _shared_link(store, url)
    if link is not None:
        return link, None
    store_server = create_store_server(store, name=server, host=host, port=port)
    store_server.start()
    logger.info("Serving the %s to runner processes at %s", type(store).__name__, store_server.endpoint)
    announce_web_apps(store_server)
    return StoreLink(url=store_server.endpoint), store_server
