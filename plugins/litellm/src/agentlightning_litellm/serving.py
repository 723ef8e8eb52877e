"""Running the gateway under uvicorn: in a child process (default) or in a thread of this process."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any, Optional

from .settings import ProxySettings

__all__ = ["bind_socket", "serve_forever", "process_main", "ThreadServer"]

logger = logging.getLogger(__name__)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``IPPROTO_TCP`` so that asyncio sets TCP_NODELAY on accepted connections)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _server(settings: ProxySettings, store: Any) -> Any:
    import uvicorn

    from .gateway import build_app

    config = uvicorn.Config(build_app(settings, store), log_level="warning", lifespan="on", access_log=False)
    return uvicorn.Server(config)


def serve_forever(settings: ProxySettings, store: Any, host: str, port: int) -> None:
    """Serve in the foreground until SIGINT/SIGTERM (``agl proxy serve``)."""
    sock = bind_socket(host, port)
    print(f"LLM proxy listening on http://{host}:{sock.getsockname()[1]}", flush=True)
    _server(settings, store).run(sockets=[sock])


def process_main(settings: ProxySettings, store_link: Any, host: str, port: int, conn: Any) -> None:
    """Entry point of the proxy's child process: bind, report the port through ``conn``, serve until SIGTERM."""
    logging.basicConfig(level=logging.WARNING)
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        conn.send(("error", f"cannot listen on {host}:{port}: {exc}"))
        return
    conn.send(("port", sock.getsockname()[1]))
    conn.close()
    store = store_link.open() if store_link is not None else None
    _server(settings, store).run(sockets=[sock])


class ThreadServer:
    """The gateway on its own event loop in a daemon thread."""

    def __init__(self, settings: ProxySettings, store: Any, host: str, port: int) -> None:
        self.sock = bind_socket(host, port)
        self.port = int(self.sock.getsockname()[1])
        self.server = _server(settings, store)
        self.thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="agl-llm-proxy", daemon=True
        )
        self.thread.start()

    def is_alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
        self.sock.close()
