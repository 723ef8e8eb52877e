"""Upstream v0.3's multi-worker serving: a gunicorn master with uvicorn workers, in a child process.

Needs ``gunicorn`` and ``uvicorn-worker`` (``pip install gunicorn uvicorn-worker``); imported only when used.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from typing import Any, AsyncContextManager, Dict, Optional

from .serving import ChildEvent, probe_health

__all__ = ["GUNICORN_HINT", "gunicorn_app_class", "run_gunicorn"]

logger = logging.getLogger(__name__)

GUNICORN_HINT = "serving with several workers needs gunicorn and uvicorn-worker: pip install gunicorn uvicorn-worker"

_APP_CLASS: Any = None


def gunicorn_app_class() -> Any:
    """``GunicornApp(app, options)``: a programmatic gunicorn application serving the ASGI ``app``; ``options`` are
    gunicorn settings (``bind``, ``workers``, ``worker_class``...; unknown keys and ``None`` values are skipped)."""
    global _APP_CLASS
    if _APP_CLASS is not None:
        return _APP_CLASS
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError as exc:
        raise ImportError(GUNICORN_HINT) from exc

    class GunicornApp(BaseApplication):  # type: ignore[misc]
        """A gunicorn application serving an ASGI app object with the given settings."""

        def __init__(self, app: Any, options: Dict[str, Any]) -> None:
            self.application = app
            self.options = dict(options or {})
            super().__init__()

        def load_config(self) -> None:
            known = self.cfg.settings
            for key, value in self.options.items():
                if key in known and value is not None:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return self.application

    GunicornApp.__module__ = "agentlightning.utils.server_launcher"
    _APP_CLASS = GunicornApp
    return GunicornApp


def _bind_url(gunicorn_app: Any) -> str:
    bind = gunicorn_app.cfg.bind[0] if gunicorn_app.cfg.bind else "127.0.0.1:8000"
    host, _, port = bind.rpartition(":")
    if host in ("", "0.0.0.0"):  # noqa: S104 - compares, does not bind
        host = "127.0.0.1"
    return f"http://{host}:{port}/"


def _watch(gunicorn_app: Any, event_queue: Any, timeout: float, health_url: Optional[str]) -> None:
    """Report ``ready`` once the workers answer (``health_url`` with 200, else any HTTP answer), or an error and stop
    the master when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    url = health_url or _bind_url(gunicorn_app)
    last = "no answer yet"
    while time.monotonic() < deadline:
        last = probe_health(url, min(1.0, max(0.1, deadline - time.monotonic())))
        if last == "ok" or (health_url is None and last.startswith("HTTP")):
            event_queue.put(ChildEvent(kind="ready"))
            return
        time.sleep(0.1)
    if health_url is not None and last.startswith("HTTP"):
        message = f"Server is not healthy at {health_url} within {timeout} seconds (last check: {last})"
    else:
        message = f"Gunicorn workers did not start within {timeout} seconds (last check: {last})"
    event_queue.put(ChildEvent(kind="error", exc_type="RuntimeError", message=message))
    os.kill(os.getpid(), signal.SIGTERM)  # the master halts gracefully (exit code 0 once it had started)


def run_gunicorn(
    gunicorn_app: Any,
    serve_context: AsyncContextManager[Any],
    event_queue: Any,
    timeout: float = 60.0,
    health_url: Optional[str] = None,
) -> None:
    """Process target (``fork``): run the gunicorn master inside ``serve_context``; report one :class:`ChildEvent`.

    SIGTERM (graceful) or SIGINT (quick) stops it with exit code 0; a master that cannot bind exits non-zero."""
    from gunicorn.arbiter import Arbiter

    master = os.getpid()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(serve_context.__aenter__())
    watcher = threading.Thread(
        target=_watch, args=(gunicorn_app, event_queue, timeout, health_url), name="agl-gunicorn-watch", daemon=True
    )
    watcher.start()
    try:
        Arbiter(gunicorn_app).run()
    finally:
        if os.getpid() == master:  # workers are forked from here and leave through this frame too
            loop.run_until_complete(serve_context.__aexit__(None, None, None))
            loop.close()
