"""``python -m agentlightning.cli.store [OPTIONS]``: upstream v0.3's module for ``agl store`` (serve a store over HTTP).

The command itself comes from the plugin that registers ``store`` (agentlightning-server).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``agl store`` with ``argv`` (default: the command line); returns the exit code."""
    from agentlightning.plugins import UnknownComponentError, get_plugin_manager

    try:
        registration = get_plugin_manager().get("commands", "store")
    except UnknownComponentError:
        print("agl store: no plugin provides this command; install agentlightning-server", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="agl store", description=registration.description)
    registration.load()(parser)
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
