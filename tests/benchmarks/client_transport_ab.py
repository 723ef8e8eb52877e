"""A/B: the store client over our HTTP/1.1 client (``http11``) vs over ``httpx.AsyncClient``, end to end.

Both sides drive the same store server (``python -m agentlightning_server.serve``, its own process, 127.0.0.1) with
the same request mix through :class:`LightningStoreClient`; only its ``transport`` differs. Each client process runs
``--tasks`` concurrent tasks; each task does ``--rounds`` rounds of enqueue, dequeue, ``--spans`` ``add_span`` calls
and one ``update_attempt`` (3 + spans requests a round). The two transports alternate, one repetition of each before
the next, and the figures are requests/s and CPU microseconds per request (client, server, both)::

    python tests/benchmarks/client_transport_ab.py --reps 3 --tasks 8 --rounds 200 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List

TRANSPORTS = ("http11", "httpx")


def worker(url: str, transport: str, tasks: int, rounds: int, spans: int, span_bytes: int) -> Dict[str, Any]:
    """One client process: the request mix from ``tasks`` concurrent tasks; wall and CPU time."""
    import anyio
    from agentlightning.testing.store_suite import make_span
    from agentlightning_server.client import LightningStoreClient

    client = LightningStoreClient(url, max_connections=tasks)
    client.transport = transport
    payload = {"payload": "x" * span_bytes}
    counts = [0]

    async def task() -> None:
        for _ in range(rounds):
            await client.enqueue_rollout({"task": 1})
            claimed = await client.dequeue_rollout(worker_id="w")
            assert claimed is not None
            rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
            for seq in range(1, spans + 1):
                await client.add_span(make_span(rid, aid, seq, attributes=payload))
            await client.update_attempt(rid, aid, status="succeeded")
            counts[0] += 3 + spans

    async def main() -> Dict[str, Any]:
        await client.statistics()  # connect before timing
        counts[0] = 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(tasks):
                tg.start_soon(task)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        await client.close()
        return {"requests": counts[0], "seconds": seconds, "client_cpu_seconds": cpu}

    return anyio.run(main)


def run_case(server: Any, args: argparse.Namespace, transport: str) -> Dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", "--url", server.url, "--transport", transport]
    cmd += ["--tasks", str(args.tasks), "--rounds", str(args.rounds), "--spans", str(args.spans)]
    cmd += ["--span-bytes", str(args.span_bytes)]
    before = server.usage()["cpu"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(args.processes)]
    outs = [p.communicate()[0] for p in procs]
    server_cpu = server.usage()["cpu"] - before
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a {transport} client failed")
    runs = [json.loads(o.strip().splitlines()[-1]) for o in outs]
    requests = sum(r["requests"] for r in runs)
    seconds = max(r["seconds"] for r in runs)
    client_cpu = sum(r["client_cpu_seconds"] for r in runs)
    return {
        "requests": requests,
        "requests_per_s": round(requests / seconds, 1),
        "client_cpu_us_per_request": round(client_cpu / requests * 1e6, 1),
        "server_cpu_us_per_request": round(server_cpu / requests * 1e6, 1),
        "total_cpu_us_per_request": round((client_cpu + server_cpu) / requests * 1e6, 1),
    }


def compare(args: argparse.Namespace) -> Dict[str, Any]:
    runs: Dict[str, List[Dict[str, Any]]] = {t: [] for t in TRANSPORTS}
    from run_all import OurServer  # a sibling script: the store server in its own process

    server = OurServer(args.store)
    try:
        for rep in range(args.reps):
            order = TRANSPORTS if rep % 2 == 0 else TRANSPORTS[::-1]
            for transport in order:
                runs[transport].append(run_case(server, args, transport))
    finally:
        server.stop()
    out: Dict[str, Any] = {
        "params": {k: getattr(args, k) for k in ("store", "reps", "processes", "tasks", "rounds", "spans")},
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    for transport, entries in runs.items():
        out[transport] = {m: statistics.median(e[m] for e in entries) for m in entries[0] if m != "requests"}
        out[transport]["runs"] = entries
    ours, theirs = runs["http11"], runs["httpx"]
    paired = [a["requests_per_s"] / b["requests_per_s"] for a, b in zip(ours, theirs)]
    out["speedup_requests_per_s"] = round(statistics.median(paired), 2)
    out["speedup_requests_per_s_range"] = [round(min(paired), 2), round(max(paired), 2)]
    for part in ("client", "total"):
        key = f"{part}_cpu_us_per_request"
        cpu = [b[key] / a[key] for a, b in zip(ours, theirs)]
        out[f"{part}_cpu_ratio_httpx_over_http11"] = round(statistics.median(cpu), 2)
    return out


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="memory://", help="store URL the server serves (default memory://)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--processes", type=int, default=1, help="client processes per case")
    parser.add_argument("--tasks", type=int, default=8, help="concurrent tasks per client process")
    parser.add_argument("--rounds", type=int, default=200, help="rounds per task")
    parser.add_argument("--spans", type=int, default=4, help="add_span calls per round")
    parser.add_argument("--span-bytes", type=int, default=512)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--transport", choices=TRANSPORTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(args.url, args.transport, args.tasks, args.rounds, args.spans, args.span_bytes)
        print(json.dumps(result))
        return 0
    result = compare(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for transport in TRANSPORTS:
            r = result[transport]
            print(
                f"{transport:7} {r['requests_per_s']:9.0f} req/s  client {r['client_cpu_us_per_request']:6.0f} us/req"
                f"  server {r['server_cpu_us_per_request']:6.0f} us/req  total {r['total_cpu_us_per_request']:6.0f}"
            )
        print(f"http11 / httpx requests/s: {result['speedup_requests_per_s']} {result['speedup_requests_per_s_range']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
