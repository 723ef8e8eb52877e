"""Running the gateway under uvicorn: in a child process (default) or in a thread of this process."""

from __future__ import annotations

import logging
from typing import Any

from agentlightning.utils.server_launcher import BackgroundServer, access_host, bind_socket, run_server

from .settings import ProxySettings

__all__ = ["process_main", "serve_forever", "thread_server"]

logger = logging.getLogger(__name__)


def _app(settings: ProxySettings, store: Any) -> Any:
    from .gateway import build_app

    return build_app(settings, store)


def serve_forever(settings: ProxySettings, store: Any, host: str, port: int) -> None:
    """Serve in the foreground until SIGINT/SIGTERM (``agl proxy serve``)."""
    sock = bind_socket(host, port)
    print(f"LLM proxy listening on http://{access_host(host, outbound=True)}:{sock.getsockname()[1]}", flush=True)
    run_server(_app(settings, store), sock, lifespan="on")


def process_main(settings: ProxySettings, store_link: Any, host: str, port: int, conn: Any) -> None:
    """Entry point of the proxy's child process: bind, report the port through ``conn``, serve until SIGTERM."""
    logging.basicConfig(level=logging.WARNING)
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        conn.send(("error", str(exc)))
        return
    conn.send(("port", sock.getsockname()[1]))
    conn.close()
    store = store_link.open() if store_link is not None else None
    run_server(_app(settings, store), sock, lifespan="on")


def thread_server(
    settings: ProxySettings, store: Any, host: str, port: int, startup_timeout: float = 120.0
) -> BackgroundServer:
    """The gateway on its own event loop in a daemon thread (not started yet)."""
    app = _app(settings, store)
    return BackgroundServer(app, host=host, port=port, name="LLM proxy", startup_timeout=startup_timeout, lifespan="on")
