"""Run the server in the foreground (``agl store serve`` and the subprocess launch mode).

``python -m agentlightning_server.serve --store URL --host H --port P [--workers N]`` prints one line
``AGL_STORE_SERVER_LISTENING <endpoint>`` on stdout once its socket is bound, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, Optional, Sequence

import attrs
from agentlightning.utils.server_launcher import (
    access_host,
    bind_socket,
    free_port,
    is_loopback,
    run_server,
    uvicorn_config,
)

from . import wire

__all__ = ["LISTENING", "access_host", "bind_socket", "free_port", "is_loopback", "serve_forever"]

LISTENING = "AGL_STORE_SERVER_LISTENING"

SERVER_OPTIONS: Dict[str, Any] = {"timeout_keep_alive": 30, "proxy_headers": False, "server_header": False}
"""uvicorn options of every store server (with ``ServerSettings.http_options()``: the protocol and its limits)."""


def check_security(host: str, token: Optional[str]) -> None:
    if not token and not is_loopback(host):
        raise ValueError(
            f"refusing to serve on non-loopback address {host!r} without a token: pass --token or set {wire.TOKEN_ENV}"
        )


def check_workers(store_url: str, workers: int) -> None:
    """Several worker processes need a store whose data all processes share (``zero_copy``)."""
    if workers <= 1:
        return
    import anyio
    from agentlightning.store import open_store

    store = open_store(store_url)
    try:
        shared = bool(store.capabilities.get("zero_copy"))
    finally:
        anyio.run(store.close)
    if not shared:
        raise ValueError(
            f"--workers {workers} needs a store that several processes can share (capability zero_copy); "
            f"{type(store).__name__} ({store_url}) keeps its data in one process: use --workers 1 or a sqlite:// store"
        )


def serve_forever(
    store_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 4747,
    workers: int = 1,
    settings: Any = None,
    log_level: str = "warning",
    announce: bool = True,
) -> None:
    """Bind, announce the endpoint, and serve until a signal stops the process."""
    from .app import SETTINGS_ENV, ServerSettings, create_app

    settings = settings or ServerSettings(token=os.environ.get(wire.TOKEN_ENV) or None)
    check_security(host, settings.token)
    check_workers(store_url, workers)
    options: Dict[str, Any] = {**SERVER_OPTIONS, **settings.http_options(), "log_level": log_level}
    sock = bind_socket(host, port)
    if announce:
        endpoint = f"http://{access_host(host)}:{sock.getsockname()[1]}"
        print(f"{LISTENING} {endpoint}", flush=True)
        if settings.web_apps:
            from .web_apps import web_app_urls

            for name, url in web_app_urls(endpoint).items():
                print(f"{name} at {url}", flush=True)
    if workers <= 1:
        run_server(create_app(store_url, settings), sock, **options)
        return
    env = {k: v for k, v in attrs.asdict(settings).items() if k != "token"}
    os.environ[SETTINGS_ENV] = json.dumps({**env, "cors_origins": list(settings.cors_origins), "store": store_url})
    if settings.token:
        os.environ[wire.TOKEN_ENV] = settings.token
    from .protocol import CorkedHTTPProtocol

    # worker processes get the protocol class by reference (a configured subclass cannot be pickled): it reads its
    # limits from the settings variable
    options["http"] = CorkedHTTPProtocol
    config = uvicorn_config("agentlightning_server.app:create_app_from_env", factory=True, workers=workers, **options)
    import inspect

    from uvicorn import Server
    from uvicorn.supervisors import Multiprocess

    if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn 0.30 still takes the worker's target
        Multiprocess(config, target=Server(config).run, sockets=[sock]).run()  # type: ignore[call-arg, unused-ignore]
    else:
        Multiprocess(config, sockets=[sock]).run()


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default="memory://", help="store URL to serve (default: memory://)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4747, help="port to bind, 0 for any free port (default: 4747)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (zero_copy stores only)")
    parser.add_argument("--token", default=None, help=f"bearer token clients must send (default: ${wire.TOKEN_ENV})")
    parser.add_argument("--cors-origin", action="append", default=[], help="allow this CORS origin (repeatable)")
    parser.add_argument("--max-body-bytes", type=int, default=32 * 1024 * 1024, help="largest request body accepted")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="seconds one store call may take")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default: warning)")
    # Upstream v0.3's `agl store` options, accepted so its commands work unchanged.
    parser.add_argument("--n-workers", dest="workers", type=int, help="same as --workers (upstream's name)")
    parser.add_argument(
        "--backend", choices=("memory", "mongo"), default=None,
        help="upstream's store choice: memory is --store memory:// (mongo is not available; use --store sqlite://)",
    )  # fmt: skip
    parser.add_argument("--mongo-uri", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tracker", nargs="+", default=None, help="upstream's metrics trackers (not served here)")


def run_from_args(args: argparse.Namespace) -> int:
    from agentlightning.store.errors import StoreError

    from .app import ServerSettings

    if getattr(args, "backend", None) == "mongo":
        print("agl store: the mongo backend is not available; serve a shared file instead: --store sqlite:///run.db",
              file=sys.stderr)  # fmt: skip
        return 2
    if getattr(args, "tracker", None):
        print(f"agl store: --tracker {' '.join(args.tracker)} ignored (no metrics trackers here)", file=sys.stderr)
    token = args.token or os.environ.get(wire.TOKEN_ENV) or None
    settings = ServerSettings(
        token=token,
        max_body_bytes=args.max_body_bytes,
        request_timeout=args.request_timeout,
        cors_origins=tuple(args.cors_origin),
    )
    try:
        serve_forever(
            args.store,
            host=args.host,
            port=args.port,
            workers=args.workers,
            settings=settings,
            log_level=str(args.log_level).lower(),
        )
    except (ValueError, StoreError, OSError) as exc:
        print(f"agl store serve: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentlightning_server.serve", description=__doc__)
    add_serve_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
