"""Run the server in the foreground (``agl store serve`` and the subprocess launch mode).

``python -m agentlightning_server.serve --store URL --host H --port P [--workers N]`` prints one line
``AGL_STORE_SERVER_LISTENING <endpoint>`` on stdout once its socket is bound, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import sys
from typing import Any, Dict, Optional, Sequence

import attrs

from . import wire

LISTENING = "AGL_STORE_SERVER_LISTENING"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def access_host(host: str) -> str:
    """The host a client on this machine uses to reach a server bound to ``host``."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - compares, does not bind
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket. Created with ``IPPROTO_TCP`` so that asyncio sets TCP_NODELAY on accepted
    connections (uvicorn's own socket has proto 0, and small responses then wait ~40 ms on delayed ACKs)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


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
    import uvicorn

    from .app import SETTINGS_ENV, ServerSettings, create_app
    from .protocol import CorkedHTTPProtocol

    settings = settings or ServerSettings(token=os.environ.get(wire.TOKEN_ENV) or None)
    check_security(host, settings.token)
    check_workers(store_url, workers)
    common: Dict[str, Any] = {"host": host, "port": port, "log_level": log_level, "access_log": False}
    common["timeout_keep_alive"] = 30
    common.update(http=CorkedHTTPProtocol, proxy_headers=False, server_header=False)
    if workers > 1:
        env = {k: v for k, v in attrs.asdict(settings).items() if k != "token"}
        os.environ[SETTINGS_ENV] = json.dumps({**env, "cors_origins": list(settings.cors_origins), "store": store_url})
        if settings.token:
            os.environ[wire.TOKEN_ENV] = settings.token
        config = uvicorn.Config(
            "agentlightning_server.app:create_app_from_env", factory=True, workers=workers, **common
        )
    else:
        config = uvicorn.Config(create_app(store_url, settings), **common)
    sock = bind_socket(host, port)
    if announce:
        bound_port = sock.getsockname()[1]
        print(f"{LISTENING} http://{access_host(host)}:{bound_port}", flush=True)
    if workers > 1:
        import inspect

        from uvicorn.supervisors import Multiprocess

        if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn < 0.30
            Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()  # type: ignore[call-arg]
        else:
            Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


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


def run_from_args(args: argparse.Namespace) -> int:
    from agentlightning.store.errors import StoreError

    from .app import ServerSettings

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
            log_level=args.log_level,
        )
    except (ValueError, StoreError, OSError) as exc:
        print(f"agl store serve: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentlightning_server.serve", description=__doc__)
    add_serve_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
