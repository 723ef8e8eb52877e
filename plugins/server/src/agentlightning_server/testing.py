"""Test helpers: one server hosting many fresh stores, each at its own URL prefix (``http://host:port/s/<id>``).

Starting a server per test is slow; :class:`StoreHost` starts one and hands out a fresh backing store (built in the
server's event loop) and a :class:`LightningStoreClient` for it on demand::

    with StoreHost() as host:
        client = await host.new_client(lambda: InMemoryLightningStore())
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, List, Optional, Tuple

from agentlightning.store.base import LightningStore
from starlette.types import Receive, Scope, Send

from .app import ServerSettings, create_app
from .client import LightningStoreClient
from .server import LightningStoreServer

__all__ = ["StoreHost"]


class _Dispatch:
    """ASGI: ``/s/<id>/rest`` goes to app ``<id>`` as ``/rest``."""

    def __init__(self) -> None:
        self.apps: Dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        _, _, key, rest = [*scope["path"].split("/", 3), "", "", "", ""][:4]
        app = self.apps.get(key) if scope["path"].startswith("/s/") else None
        if app is None:
            from starlette.responses import JSONResponse

            body = {"detail": f"no store at {scope['path']}", "error_type": "NotFoundError"}
            await JSONResponse(body, status_code=404)(scope, receive, send)
            return
        await app({**scope, "path": "/" + rest, "raw_path": ("/" + rest).encode()}, receive, send)


class StoreHost:
    """A thread-mode server on 127.0.0.1 whose stores come and go while it runs."""

    def __init__(self, settings: Optional[ServerSettings] = None, **client_options: Any) -> None:
        self.settings = settings or ServerSettings()
        self.client_options = client_options
        self._dispatch = _Dispatch()
        self._server = LightningStoreServer(None, port=0, app=self._dispatch)  # type: ignore[arg-type]
        self._ids = itertools.count(1)
        self._stores: Dict[str, LightningStore] = {}

    @property
    def server(self) -> LightningStoreServer:
        return self._server

    def start(self) -> StoreHost:
        self._server.start()
        return self

    def stop(self) -> None:
        for key in list(self._stores):
            self.drop(key)
        self._server.stop()

    def __enter__(self) -> StoreHost:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def add(self, factory: Callable[[], LightningStore]) -> Tuple[str, str]:
        """Build a store in the server loop and serve it; returns ``(key, url)``. Blocking."""

        async def build() -> LightningStore:
            return factory()

        store = self._server.run_in_server_loop(build)
        key = str(next(self._ids))
        self._stores[key] = store
        self._dispatch.apps[key] = create_app(store, self.settings)
        return key, f"{self._server.endpoint}/s/{key}"

    def backing_store(self, key: str) -> LightningStore:
        return self._stores[key]

    def drop(self, key: str) -> None:
        """Stop serving a store and close it (in the server loop). Blocking."""
        self._dispatch.apps.pop(key, None)
        store = self._stores.pop(key, None)
        if store is not None:
            self._server.run_in_server_loop(store.close)

    async def new_client(self, factory: Callable[[], LightningStore]) -> Tuple[str, LightningStoreClient]:
        import anyio.to_thread

        key, url = await anyio.to_thread.run_sync(self.add, factory)
        options = {"token": self.settings.token, **self.client_options}
        return key, LightningStoreClient(url, **options)

    def keys(self) -> List[str]:
        return list(self._stores)
