"""Serve upstream Agent Lightning v0.3's own store server (in-memory backend), for compatibility tests.

Run it with the Python of a virtualenv that has ``agentlightning==0.3.0``::

    /tmp/upstream/bin/python tests/compat/upstream_server.py 4799

It serves on 127.0.0.1:PORT until killed (SIGTERM/SIGINT).
"""

from __future__ import annotations

import asyncio
import sys


async def serve(port: int) -> None:
    from agentlightning.store import InMemoryLightningStore, LightningStoreServer

    server = LightningStoreServer(InMemoryLightningStore(thread_safe=True), host="127.0.0.1", port=port,
                                  launch_mode="asyncio")  # fmt: skip
    await server.run_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
