"""The ``agl`` command line. Core provides ``plugins`` and ``--version``; plugins add sub-commands via a hook."""

from __future__ import annotations

from typing import Optional, Sequence

from .app import build_parser, main

__all__ = ["build_parser", "main", "run"]


def run(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``agl`` with ``argv`` and return the exit code instead of exiting."""
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0
