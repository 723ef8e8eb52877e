"""The shared store workload, runnable against any store URL.

N rollouts are enqueued in one ``enqueue_many_rollouts``; K workers loop dequeue -> S spans of ~2 KB attributes
(``add_many_spans`` in one call, or ``add_span`` each with ``--span-mode single``) -> ``update_attempt(succeeded)``;
the algorithm side waits for the rollouts (``wait_for_rollouts``) and queries their spans.

    python tests/benchmarks/store_workload.py --store memory:// --n 2000 --spans 20 --workers 4
    python tests/benchmarks/store_workload.py --store sqlite:///tmp/w.db --workers 8 --processes 4 --json

With ``--processes P`` the K workers run in P child processes that open the store by URL (a store shared across
processes: sqlite:// or http://); the parent enqueues, waits and queries. The children start, open the store and
report ready before the parent enqueues and starts the clock (process start-up is not part of the measured window);
their CPU time is counted from the start signal on.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import anyio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling, also when loaded from a file path
from runner_pattern import dequeue_until_idle, poll_and_read, prepare, runner_worker  # noqa: E402
from runner_pattern import otel_attributes as _attributes  # noqa: E402  (the payloads of every span mode)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (wall time misleads on a shared machine)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentile(values: List[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _make_spans(rollout_id: str, attempt_id: str, count: int, size: int) -> List[Any]:
    from agentlightning.types.tracer import Span

    trace = os.urandom(16).hex()
    return [
        Span.from_attributes(
            attributes=_attributes(i, size),
            rollout_id=rollout_id,
            attempt_id=attempt_id,
            sequence_id=i + 1,
            name=f"step-{i}",
            trace_id=trace,
            span_id=os.urandom(8).hex(),
            start_time=time.time(),
            end_time=time.time(),
        )
        for i in range(count)
    ]


async def _worker(store: Any, worker_id: str, args: argparse.Namespace, lat: Dict[str, List[float]]) -> int:
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


async def _run_workers(
    store: Any, prefix: str, count: int, args: argparse.Namespace
) -> Tuple[int, Dict[str, List[float]]]:
    lat: Dict[str, List[float]] = {"dequeue": [], "add_span": []}
    totals: List[int] = []

    async def one(i: int) -> None:
        totals.append(await _worker(store, f"{prefix}-{i}", args, lat))

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(one, i)
    return sum(totals), lat


def _child(url: str, prefix: str, count: int, args: argparse.Namespace, queue: Any, ready: Any, go: Any) -> None:
    """A runner process: open the store, say ready, wait for the start signal, then work (CPU counted from then)."""

    async def main() -> Tuple[int, Dict[str, List[float]], float]:
        from agentlightning.store import open_store

        store = open_store(url)
        try:
            await store.statistics()  # the store is reachable (a client connects here)
            if args.span_mode == "runner":
                prepare()
            ready.put(prefix)
            await anyio.to_thread.run_sync(go.wait)
            cpu0 = _own_cpu()
            done, lat = await _run_workers(store, prefix, count, args)
            return done, lat, _own_cpu() - cpu0
        finally:
            await store.close()

    queue.put(anyio.run(main))


async def _algorithm(store: Any, args: argparse.Namespace) -> Tuple[List[str], float]:
    from agentlightning.types.core import EnqueueRolloutRequest
    from agentlightning.types.resources import PromptTemplate

    if args.span_mode == "runner":  # what the runners' get_latest_resources returns
        await store.add_resources({"prompt": PromptTemplate(template="Solve {task}.", engine="f-string")})

    requests = [EnqueueRolloutRequest(input={"task": i}) for i in range(args.n)]
    rollouts = await store.enqueue_many_rollouts(requests)
    return [r.rollout_id for r in rollouts], time.perf_counter()


async def _wait(store: Any, ids: List[str], args: argparse.Namespace) -> None:
    finished = await store.wait_for_rollouts(rollout_ids=ids, timeout=args.timeout)
    if len(finished) != len(ids):
        raise SystemExit(f"only {len(finished)} of {len(ids)} rollouts finished within {args.timeout} s")


async def _poll(store: Any, ids: List[str], args: argparse.Namespace) -> Tuple[int, int]:
    from agentlightning.store.errors import SpansEvictedError

    return await poll_and_read(store, ids, args.poll_interval, args.timeout, (SpansEvictedError,))


async def _query_all(store: Any, ids: List[str]) -> int:
    """Spans read back for ``ids`` (rollouts whose spans a retention budget evicted count as none)."""
    from agentlightning.store.errors import SpansEvictedError

    spans = 0
    for rollout_id in ids:
        try:
            spans += len(await store.query_spans(rollout_id))
        except SpansEvictedError:
            pass
    return spans


def run(args: argparse.Namespace) -> Dict[str, Any]:
    from agentlightning.store import open_store

    lat: Dict[str, List[float]] = {"dequeue": [], "add_span": []}
    result: Dict[str, Any] = {}

    async def main() -> None:
        store = open_store(args.store)
        procs: List[Any] = []
        try:
            if args.processes > 0:
                ctx = multiprocessing.get_context("spawn")
                queue, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
                per = [
                    args.workers // args.processes + (1 if i < args.workers % args.processes else 0)
                    for i in range(args.processes)
                ]
                procs = [
                    ctx.Process(target=_child, args=(args.store, f"p{i}", n, args, queue, ready, go))
                    for i, n in enumerate(per)
                    if n
                ]
                for proc in procs:
                    proc.start()
                for _ in procs:
                    await anyio.to_thread.run_sync(ready.get)
            if args.span_mode == "runner":
                prepare()
            ids, t_start = await _algorithm(store, args)
            cpu_start = _cpu_seconds()
            if procs:
                own_start = _own_cpu()
                go.set()
                if args.span_mode == "runner":
                    spans, polls = await _poll(store, ids, args)
                else:
                    await _wait(store, ids, args)
                t_end = time.perf_counter()
                runner_cpu = 0.0
                for _ in procs:
                    _, child_lat, child_cpu = await anyio.to_thread.run_sync(queue.get)
                    runner_cpu += child_cpu
                    for key, values in lat.items():
                        values.extend(child_lat[key])
                for proc in procs:
                    await anyio.to_thread.run_sync(proc.join)
                if args.span_mode != "runner":
                    spans = await _query_all(store, ids)
                cpu = _own_cpu() - own_start + runner_cpu
            else:
                async with anyio.create_task_group() as tg:

                    async def workers() -> None:
                        _, worker_lat = await _run_workers(store, "w", args.workers, args)
                        for key, values in lat.items():
                            values.extend(worker_lat[key])

                    tg.start_soon(workers)
                    if args.span_mode == "runner":
                        spans, polls = await _poll(store, ids, args)
                    else:
                        await _wait(store, ids, args)
                    t_end = time.perf_counter()
                if args.span_mode != "runner":
                    spans = await _query_all(store, ids)
                cpu = _cpu_seconds() - cpu_start
            elapsed = t_end - t_start
            if args.span_mode == "runner":
                result["algorithm_polls"] = polls
            result.update(
                store=args.store,
                n=args.n,
                spans_per_rollout=args.spans,
                workers=args.workers,
                processes=args.processes,
                span_mode=args.span_mode,
                seconds=round(elapsed, 3),
                rollouts_per_s=round(args.n / elapsed, 1),
                spans_per_s=round(args.n * args.spans / elapsed, 1),
                cpu_seconds=round(cpu, 3),
                rollouts_per_cpu_s=round(args.n / cpu, 1) if cpu > 0 else None,
                spans_queried=spans,
                dequeue_p50_ms=round(_percentile(lat["dequeue"], 0.5) * 1e3, 3),
                dequeue_p99_ms=round(_percentile(lat["dequeue"], 0.99) * 1e3, 3),
                add_span_p50_ms=round(_percentile(lat["add_span"], 0.5) * 1e3, 4),
                add_span_p99_ms=round(_percentile(lat["add_span"], 0.99) * 1e3, 4),
                peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                peak_rss_children_mb=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
                statistics={k: v for k, v in (await store.statistics()).items() if k != "uptime"},
            )
        finally:
            for proc in procs:  # runners still working when this run failed: never leave them waiting at exit
                if proc.is_alive():
                    proc.terminate()
            await store.close()

    anyio.run(main, backend=args.backend)
    if lat["add_span"]:
        result["add_span_mean_ms"] = round(statistics.fmean(lat["add_span"]) * 1e3, 4)
    return result


def parse(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="memory://", help="store URL (memory://, sqlite:///path, http://...)")
    parser.add_argument("--n", type=int, default=2000, help="rollouts")
    parser.add_argument("--spans", type=int, default=20, help="spans per rollout")
    parser.add_argument("--span-bytes", type=int, default=2048, help="approximate attribute bytes per span")
    parser.add_argument("--workers", type=int, default=4, help="concurrent workers")
    parser.add_argument("--processes", type=int, default=0, help="run the workers in this many child processes")
    parser.add_argument(
        "--span-mode", choices=("many", "single", "runner"), default="many", help="runner: see runner_pattern.py"
    )
    parser.add_argument("--poll-interval", type=float, default=0.05, help="runner mode: algorithm's poll interval")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the rollouts")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    if args.processes and args.store.startswith("memory"):
        parser.error("--processes needs a store shared across processes (sqlite:// or http://), not memory://")
    return args


def main(argv: Optional[List[str]] = None) -> int:
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
