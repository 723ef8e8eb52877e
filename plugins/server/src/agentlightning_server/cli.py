"""``agl store serve``: the ``store`` sub-command the plugin registers with the ``agl`` CLI."""

from __future__ import annotations

import argparse

from .serve import add_serve_arguments, run_from_args


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``serve`` (and its options) under the ``store`` command."""
    commands = parser.add_subparsers(dest="store_command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve a store over HTTP (REST under /v1/agl, OTLP at /v1/traces)")
    add_serve_arguments(serve)
    serve.set_defaults(func=run_from_args)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
