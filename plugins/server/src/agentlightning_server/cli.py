"""``agl store`` (upstream's form, options right after ``store``) and ``agl store serve``: serve a store over HTTP;
``agl store copy SRC DST``: copy a run between stores."""

from __future__ import annotations

import argparse

from .serve import add_serve_arguments, run_from_args


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """``agl store [OPTIONS]`` serves, like upstream v0.3's ``agl store --port 4747``; ``agl store serve [OPTIONS]``
    is the same command under its own name."""
    add_serve_arguments(parser)
    parser.set_defaults(func=run_from_args)
    commands = parser.add_subparsers(dest="store_command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve a store over HTTP (REST under /v1/agl, OTLP at /v1/traces)")
    add_serve_arguments(serve)
    serve.set_defaults(func=run_from_args)
    copy = commands.add_parser(
        "copy", help="copy a run between stores (SQLite <-> PostgreSQL), resumable, verified by counts and checksums"
    )
    from agentlightning.cli.transfer import configure_copy

    configure_copy(copy)
