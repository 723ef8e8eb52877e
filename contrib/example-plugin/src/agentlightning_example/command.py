"""``agl example-stats --store URL``."""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default="memory://", help="Store URL (default: memory://).")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    import anyio
    from agentlightning.store import open_store

    async def main() -> dict[str, object]:
        async with open_store(args.store) as store:
            return dict(await store.statistics())

    print(json.dumps(anyio.run(main), indent=2, sort_keys=True))
    return 0
