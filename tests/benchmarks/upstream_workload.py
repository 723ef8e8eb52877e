"""The shared store workload against upstream ``agentlightning==0.3.0``'s stores, for side-by-side figures.

Run it with the upstream virtual environment's python (``run_all.py`` makes one); it prints the same metrics JSON as
``store_workload.py`` so the two line up in one table. Same phases and payloads: N rollouts enqueued in one
``enqueue_many_rollouts``; K workers loop ``dequeue_rollout`` -> S spans of ~2 KB attributes (the attributes come from
``store_workload._attributes``) in one ``add_many_spans`` -> ``update_attempt(succeeded)``; the algorithm side waits
with ``wait_for_rollouts`` and reads every rollout's spans back with ``query_spans``.

    .../upstream/bin/python tests/benchmarks/upstream_workload.py --store memory --n 2000 --json
    .../upstream/bin/python tests/benchmarks/upstream_workload.py --store client-server --processes 4 --json

Stores: ``memory`` is ``InMemoryLightningStore()`` used in process; ``client-server`` is upstream's own client-server
deployment (what its ``ClientServerExecutionStrategy`` builds): ``InMemoryLightningStore(thread_safe=True)`` behind
``LightningStoreServer`` (thread launch mode, 127.0.0.1) in the algorithm process, and P runner processes that each
talk to it through ``LightningStoreClient``.

Upstream's ``import agentlightning`` takes seconds (minutes on a loaded machine), so the runner processes are forked
from the already-imported parent before the clock starts, and their CPU time is counted from the start signal only.
This favours upstream (ours spawns its runners inside the measured window), so ratios from these figures are
conservative.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import socket
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import anyio
from runner_pattern import dequeue_until_idle, poll_and_read, prepare, runner_worker  # the same runner pattern as ours
from store_workload import _attributes, _percentile  # same payloads and percentiles as ours

Latencies = Dict[str, List[float]]


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _make_spans(rollout_id: str, attempt_id: str, count: int, size: int) -> List[Any]:
    """Upstream ``Span`` models with the same ids, names, timestamps and attributes as ours."""
    from agentlightning.types.tracer import OtelResource, Span, SpanContext, TraceStatus

    trace = os.urandom(16).hex()
    spans = []
    for i in range(count):
        span_id = os.urandom(8).hex()
        spans.append(
            Span(
                rollout_id=rollout_id,
                attempt_id=attempt_id,
                sequence_id=i + 1,
                trace_id=trace,
                span_id=span_id,
                parent_id=None,
                name=f"step-{i}",
                status=TraceStatus(status_code="OK"),
                attributes=_attributes(i, size),
                events=[],
                links=[],
                start_time=time.time(),
                end_time=time.time(),
                context=SpanContext(trace_id=trace, span_id=span_id, is_remote=False, trace_state={}),
                parent=None,
                resource=OtelResource(attributes={}, schema_url=""),
            )
        )
    return spans


async def _worker(store: Any, worker_id: str, args: argparse.Namespace, lat: Latencies) -> int:
    if args.span_mode == "runner":
        return await runner_worker(store, worker_id, args.spans, args.span_bytes, lat)
    done = 0
    async for attempted in dequeue_until_idle(store, worker_id, lat):
        spans = _make_spans(attempted.rollout_id, attempted.attempt.attempt_id, args.spans, args.span_bytes)
        if args.span_mode == "many":
            t0 = time.perf_counter()
            await store.add_many_spans(spans)
            lat["add_span"].append((time.perf_counter() - t0) / max(1, len(spans)))
        else:
            for span in spans:
                t0 = time.perf_counter()
                await store.add_span(span)
                lat["add_span"].append(time.perf_counter() - t0)
        await store.update_attempt(attempted.rollout_id, attempted.attempt.attempt_id, status="succeeded")
        done += 1
    return done


async def _run_workers(store: Any, prefix: str, count: int, args: argparse.Namespace) -> Tuple[int, Latencies]:
    lat: Latencies = {"dequeue": [], "add_span": []}
    totals: List[int] = []

    async def one(i: int) -> None:
        totals.append(await _worker(store, f"{prefix}-{i}", args, lat))

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(one, i)
    return sum(totals), lat


def _child(url: str, prefix: str, count: int, args: argparse.Namespace, go: Any, queue: Any) -> None:
    """A runner process (forked with upstream already imported): wait for the start signal, connect, work."""
    from agentlightning.store import LightningStoreClient  # type: ignore[attr-defined]  # upstream's

    async def main() -> Tuple[int, Latencies]:
        store = LightningStoreClient(url)
        try:
            return await _run_workers(store, prefix, count, args)
        finally:
            await store.close()

    go.wait()
    cpu0 = _own_cpu()
    done, lat = anyio.run(main)
    queue.put((done, lat, _own_cpu() - cpu0))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _enqueue(store: Any, n: int, runner: bool = False) -> List[str]:
    from agentlightning.types import EnqueueRolloutRequest, PromptTemplate

    if runner:  # what the runners' get_latest_resources returns
        await store.add_resources({"prompt": PromptTemplate(template="Solve {task}.", engine="f-string")})

    rollouts = await store.enqueue_many_rollouts([EnqueueRolloutRequest(input={"task": i}) for i in range(n)])
    return [r.rollout_id for r in rollouts]


async def _wait(store: Any, ids: List[str], timeout: float) -> None:
    finished = await store.wait_for_rollouts(rollout_ids=ids, timeout=timeout)
    if len(finished) != len(ids):
        raise SystemExit(f"only {len(finished)} of {len(ids)} rollouts finished within {timeout} s")


async def _wait_and_read(store: Any, ids: List[str], args: argparse.Namespace) -> int:
    """The algorithm's side until every rollout finished: spans read (runner mode reads them inside the window)."""
    if args.span_mode == "runner":
        return (await poll_and_read(store, ids, args.poll_interval, args.timeout, (RuntimeError,)))[0]
    await _wait(store, ids, args.timeout)
    return -1


async def _query_all(store: Any, ids: List[str]) -> int:
    """Spans read back for ``ids`` (upstream raises RuntimeError for rollouts whose spans it evicted: none)."""
    spans = 0
    for rollout_id in ids:
        try:
            spans += len(await store.query_spans(rollout_id))
        except RuntimeError:
            pass
    return spans


def _split(workers: int, processes: int) -> List[int]:
    return [n for n in (workers // processes + (1 if i < workers % processes else 0) for i in range(processes)) if n]


async def _in_process(store: Any, args: argparse.Namespace, lat: Latencies) -> Dict[str, Any]:
    ids = await _enqueue(store, args.n, args.span_mode == "runner")
    t_start, cpu_start = time.perf_counter(), _own_cpu()
    async with anyio.create_task_group() as tg:

        async def workers() -> None:
            _, worker_lat = await _run_workers(store, "w", args.workers, args)
            for key, values in lat.items():
                values.extend(worker_lat[key])

        tg.start_soon(workers)
        spans = await _wait_and_read(store, ids, args)
        t_end = time.perf_counter()
    if spans < 0:
        spans = await _query_all(store, ids)  # CPU counts the read-back, wall time does not (as in store_workload)
    return {"elapsed": t_end - t_start, "cpu": _own_cpu() - cpu_start, "spans": spans}


class _Runners:
    """P runner processes forked before any thread or event loop exists, held until ``go`` is set."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        ctx = multiprocessing.get_context("fork")
        self.queue, self.go = ctx.Queue(), ctx.Event()
        self.procs = [
            ctx.Process(target=_child, args=(url, f"p{i}", n, args, self.go, self.queue), daemon=True)
            for i, n in enumerate(_split(args.workers, args.processes))
        ]
        for proc in self.procs:
            proc.start()

    async def collect(self, lat: Latencies) -> float:
        """Wait for every runner; merge its latencies into ``lat`` and return the CPU seconds they used."""
        cpu = 0.0
        for _ in self.procs:
            _, child_lat, child_cpu = await anyio.to_thread.run_sync(self.queue.get)
            cpu += child_cpu
            for key, values in lat.items():
                values.extend(child_lat[key])
        for proc in self.procs:
            await anyio.to_thread.run_sync(proc.join)
        return cpu


async def _client_server(
    store: Any, runners: _Runners, port: int, args: argparse.Namespace, lat: Latencies
) -> Dict[str, Any]:
    from agentlightning.store import LightningStoreServer  # type: ignore[attr-defined]

    server = LightningStoreServer(store, host="127.0.0.1", port=port)
    await server.start()
    try:
        ids = await _enqueue(server, args.n, args.span_mode == "runner")
        t_start, cpu_start = time.perf_counter(), _own_cpu()
        runners.go.set()
        spans = await _wait_and_read(server, ids, args)
        t_end = time.perf_counter()
        runner_cpu = await runners.collect(lat)
        if spans < 0:
            spans = await _query_all(server, ids)
        return {"elapsed": t_end - t_start, "cpu": _own_cpu() - cpu_start + runner_cpu, "spans": spans}
    finally:
        await server.stop()


def run(args: argparse.Namespace) -> Dict[str, Any]:
    from importlib.metadata import version

    from agentlightning.store import InMemoryLightningStore  # type: ignore[attr-defined]

    lat: Latencies = {"dequeue": [], "add_span": []}
    result: Dict[str, Any] = {}
    if args.span_mode == "runner":
        prepare()  # as ours does (upstream's import made most of it already)

    if args.store == "client-server":
        port = _free_port()
        runners = _Runners(f"http://127.0.0.1:{port}", args)

    async def main() -> None:
        if args.store == "memory":
            store = InMemoryLightningStore()
            outcome = await _in_process(store, args, lat)
        else:
            store = InMemoryLightningStore(thread_safe=True)
            outcome = await _client_server(store, runners, port, args, lat)
        elapsed, cpu = outcome["elapsed"], outcome["cpu"]
        stats = dict(await store.statistics())
        result.update(
            store=f"upstream-{args.store}",
            upstream_version=version("agentlightning"),
            n=args.n,
            spans_per_rollout=args.spans,
            workers=args.workers,
            processes=args.processes if args.store != "memory" else 0,
            span_mode=args.span_mode,
            seconds=round(elapsed, 3),
            rollouts_per_s=round(args.n / elapsed, 1),
            spans_per_s=round(args.n * args.spans / elapsed, 1),
            cpu_seconds=round(cpu, 3),
            rollouts_per_cpu_s=round(args.n / cpu, 1) if cpu > 0 else None,
            spans_queried=outcome["spans"],
            dequeue_p50_ms=round(_percentile(lat["dequeue"], 0.5) * 1e3, 3),
            dequeue_p99_ms=round(_percentile(lat["dequeue"], 0.99) * 1e3, 3),
            add_span_p50_ms=round(_percentile(lat["add_span"], 0.5) * 1e3, 4),
            add_span_p99_ms=round(_percentile(lat["add_span"], 0.99) * 1e3, 4),
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            peak_rss_children_mb=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            statistics={k: v for k, v in stats.items() if k != "uptime"},
        )

    anyio.run(main)
    if lat["add_span"]:
        result["add_span_mean_ms"] = round(statistics.fmean(lat["add_span"]) * 1e3, 4)
    return result


def parse(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("memory", "client-server"), default="memory")
    parser.add_argument("--n", type=int, default=2000, help="rollouts")
    parser.add_argument("--spans", type=int, default=20, help="spans per rollout")
    parser.add_argument("--span-bytes", type=int, default=2048, help="approximate attribute bytes per span")
    parser.add_argument("--workers", type=int, default=4, help="concurrent workers")
    parser.add_argument("--processes", type=int, default=4, help="runner processes (client-server only)")
    parser.add_argument(
        "--span-mode", choices=("many", "single", "runner"), default="many", help="runner: see runner_pattern.py"
    )
    parser.add_argument("--poll-interval", type=float, default=0.05, help="runner mode: algorithm's poll interval")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the rollouts")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import (a timeout offline)
    args = parse(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
