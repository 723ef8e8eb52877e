"""The raw loopback HTTP limit of the store server's stack: uvicorn + starlette serving an echo, httpx calling it.

It answers "how many requests per second can any store server on this machine do at best", the anchor against which
the HTTP store figures (``store_workload.py --store http://...``) are read::

    python tests/benchmarks/http_echo_anchor.py --server-workers 1 --processes 4 --concurrency 8 --requests 500
    python tests/benchmarks/http_echo_anchor.py --body-bytes 40000 --json

The server runs in its own process (``--server-workers`` uvicorn workers on one socket); ``--processes`` client
processes each run ``--concurrency`` tasks over one pooled ``httpx.AsyncClient``; each task POSTs ``--requests``
bodies of ``--body-bytes`` to ``/echo``, which returns them (a JSON ``{"ok": true}`` with ``--body-bytes 0``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List


def app() -> Any:
    """The echo app (uvicorn factory target)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(body or b'{"ok":true}', media_type="application/json")

    return Starlette(routes=[Route("/echo", echo, methods=["POST"])])


def serve(port: int, workers: int) -> None:
    import uvicorn

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from agentlightning.utils.server_launcher import bind_socket

    config = uvicorn.Config(
        "http_echo_anchor:app", factory=True, host="127.0.0.1", port=port, workers=workers, log_level="warning",
        access_log=False,
    )  # fmt: skip
    sock = bind_socket("127.0.0.1", port)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


def _client(url: str, concurrency: int, requests: int, body_bytes: int, queue: Any) -> None:
    import anyio
    import httpx

    body = b"x" * body_bytes if body_bytes else b""
    latencies: List[float] = []

    async def task(client: httpx.AsyncClient) -> None:
        for _ in range(requests):
            started = time.perf_counter()
            response = await client.post(url, content=body)
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)

    async def main() -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(verify=False, limits=limits, timeout=60) as client:  # noqa: S501 - plain HTTP
            async with anyio.create_task_group() as tg:
                for _ in range(concurrency):
                    tg.start_soon(task, client)

    began = time.time()
    anyio.run(main)
    queue.put((began, time.time(), latencies))


def _wait_ready(url: str, deadline: float) -> None:
    import httpx

    while time.monotonic() < deadline:
        try:
            if httpx.post(url, content=b"", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("echo server did not start")


def run(args: argparse.Namespace) -> Dict[str, Any]:
    from agentlightning.utils.server_launcher import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/echo"
    server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", str(port), str(args.server_workers)]
    )
    try:
        _wait_ready(url, time.monotonic() + 60)
        queue: Any = multiprocessing.get_context("spawn").Queue()
        ctx = multiprocessing.get_context("spawn")
        procs = [
            ctx.Process(target=_client, args=(url, args.concurrency, args.requests, args.body_bytes, queue))
            for _ in range(args.processes)
        ]
        for proc in procs:
            proc.start()
        latencies: List[float] = []
        spans = []
        for _ in procs:  # timed from the first client's start to the last one's end (process start-up excluded)
            began, ended, got = queue.get(timeout=600)
            spans.append((began, ended))
            latencies.extend(got)
        elapsed = max(e for _, e in spans) - min(b for b, _ in spans)
        for proc in procs:
            proc.join(30)
    finally:
        server.terminate()
        server.wait(30)
    ordered = sorted(latencies)
    total = len(latencies)
    return {
        "server_workers": args.server_workers,
        "processes": args.processes,
        "concurrency": args.concurrency,
        "body_bytes": args.body_bytes,
        "requests": total,
        "seconds": round(elapsed, 3),
        "requests_per_s": round(total / elapsed, 1),
        "mb_per_s": round(total * args.body_bytes * 2 / elapsed / 1e6, 2),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(total - 1, int(0.99 * total))] * 1000, 3),
    }


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-workers", type=int, default=1)
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent requests per client process")
    parser.add_argument("--requests", type=int, default=300, help="requests per task")
    parser.add_argument("--body-bytes", type=int, default=0, help="request (and echoed response) body size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<16}{value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
