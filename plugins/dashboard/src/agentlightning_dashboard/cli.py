"""``agl dashboard --store URL``: serve a store read-only with the dashboard on 127.0.0.1 and print its address.

Any store URL works: a file store (``sqlite:///runs/x/store.db``) is opened in this process, an ``http://`` store is
read through its REST API (with ``--store-token`` / ``$AGL_STORE_TOKEN``). The local server answers only the routes
that read the store, so nothing is written through it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit

__all__ = ["configure_parser", "dashboard_url", "missing_file", "run"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, help="store URL: sqlite:///path/store.db, http://host:port, ...")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: 0, any free port)")
    parser.add_argument("--store-token", default=None, help="bearer token of an http:// store ($AGL_STORE_TOKEN)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default: warning)")
    parser.set_defaults(func=run)


def dashboard_url(endpoint: str) -> str:
    """Where the dashboard of a store server at ``endpoint`` is."""
    return endpoint.rstrip("/") + "/dashboard/"


def missing_file(store_url: str) -> Optional[str]:
    """The path of a ``sqlite://`` store that does not exist (opening it would create an empty one), else None."""
    parts = urlsplit(store_url)
    if parts.scheme != "sqlite":
        return None
    path = unquote(parts.path)[1:]  # sqlite:///run.db is relative, sqlite:////abs/run.db absolute
    return None if path in ("", ":memory:") or Path(path).exists() else path


def run(args: argparse.Namespace) -> int:
    from agentlightning.utils.server_launcher import access_host, bind_socket, run_server
    from agentlightning_server.app import ServerSettings, create_app
    from agentlightning_server.serve import SERVER_OPTIONS, check_security

    missing = missing_file(args.store)
    if missing is not None:
        print(f"agl dashboard: no store file at {missing!r} (check the path of {args.store})", file=sys.stderr)
        return 2
    if "://" not in args.store or args.store.startswith("memory:"):
        print(f"agl dashboard: {args.store!r} is not a store other processes can open; pass its URL", file=sys.stderr)
        return 2
    settings = ServerSettings(read_only=True)
    try:
        check_security(args.host, None)
        store: object = args.store
        if urlsplit(args.store).scheme in ("http", "https"):
            from agentlightning_server.client import LightningStoreClient

            store = LightningStoreClient(args.store, token=args.store_token)
        app = create_app(store, settings)  # type: ignore[arg-type]
        sock = bind_socket(args.host, args.port)
    except (ValueError, OSError) as exc:
        print(f"agl dashboard: {exc}", file=sys.stderr)
        return 1
    endpoint = f"http://{access_host(args.host)}:{sock.getsockname()[1]}"
    print(f"dashboard at {dashboard_url(endpoint)} (store {args.store}, read-only; Ctrl+C to stop)", flush=True)
    options = {**SERVER_OPTIONS, **settings.http_options(), "log_level": str(args.log_level).lower()}
    run_server(app, sock, **options)
    return 0
