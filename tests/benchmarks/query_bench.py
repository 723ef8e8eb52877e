"""Store queries on a big store: pushed down (SQL, memory indexes) against the engine's Python path, same data.

    python tests/benchmarks/query_bench.py                                   # 100,000 rollouts, 2,000,000 spans
    python tests/benchmarks/query_bench.py --quick                           # 2,000 rollouts, 40,000 spans
    python tests/benchmarks/query_bench.py --rollouts 100000 --spans 200000 --backends sqlite --json

The store is built by direct backend writes (``insert_rollouts``/``insert_attempt``/``insert_spans`` on the backend's
own transactions, in batches of ``--batch``): the same storage code the store API ends in, without one engine call
per rollout. Rollouts get a mix of statuses (40% succeeded, 10% failed, 20% queuing, 20% running, 10% preparing);
every non-queuing rollout has one attempt; the spans are spread over the attempted rollouts, and one more rollout
holds ``--long-spans`` spans (a long agent trajectory) that the span pages read.

Each query runs through two stores over the same backend: the store as is (``pushed``) and one whose backend hides
the push-down (``python``: :class:`~agentlightning.store.backend.WithoutQueryPushdown`, what the engine does for a
backend without ``select``/``count``). Reported: p50/p95 in milliseconds of ``--reps`` runs (fewer for the Python
path, which is slow), and whether both paths returned the same answer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Tuple

import anyio

STATUS_MIX = ["succeeded"] * 4 + ["failed", "queuing", "queuing", "running", "running", "preparing"]


def _percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _make_span(rollout_id: str, attempt_id: str, seq: int) -> Any:
    from agentlightning.types.tracer import OtelResource, Span, SpanContext, TraceStatus

    trace_id, span_id = f"{hash(rollout_id) & 0xFFFFFFFF:032x}", f"{seq:016x}"
    return Span(
        rollout_id=rollout_id,
        attempt_id=attempt_id,
        sequence_id=seq,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=None if seq == 1 else f"{1:016x}",
        name="openai.chat.completion" if seq % 2 else "agentlightning.reward",
        status=TraceStatus(status_code="OK"),
        attributes={"gen_ai.prompt.0.content": f"question {seq}", "gen_ai.usage.total_tokens": seq},
        events=[],
        links=[],
        start_time=1.7e9 + seq,
        end_time=1.7e9 + seq + 0.5,
        context=SpanContext(trace_id=trace_id, span_id=span_id),
        parent=None,
        resource=OtelResource(),
    )


def _write_rollouts(tx: Any, rollouts: List[Any], attempts: List[Any], queued: List[str]) -> None:
    tx.insert_rollouts(rollouts)
    for attempt in attempts:
        tx.insert_attempt(attempt)
    tx.queue_push(queued)


def build(backend: Any, n_rollouts: int, n_spans: int, long_spans: int, batch: int) -> Tuple[str, List[str]]:
    """Fill ``backend``; returns the long rollout's id and the attempted rollouts' ids."""
    from agentlightning.types.core import Attempt, Rollout

    start = 1.7e9
    attempted: List[str] = []
    for first in range(0, n_rollouts, batch):
        rollouts, attempts, queued = [], [], []
        for i in range(first, min(n_rollouts, first + batch)):
            status = STATUS_MIX[i % len(STATUS_MIX)]
            finished = status in ("succeeded", "failed")
            rollout_id = f"ro-{i:09d}"
            rollouts.append(
                Rollout(
                    rollout_id=rollout_id,
                    input={"task": i},
                    start_time=start + i,
                    end_time=start + i + 5 if finished else None,
                    mode="train",
                    status=status,  # type: ignore[arg-type]
                    metadata={},
                )
            )
            if status == "queuing":
                queued.append(rollout_id)
            else:
                attempt_status = status if status in ("succeeded", "failed", "running") else "preparing"
                attempts.append(
                    Attempt(
                        rollout_id=rollout_id,
                        attempt_id=f"at-{i:09d}",
                        sequence_id=1,
                        start_time=start + i,
                        status=attempt_status,  # type: ignore[arg-type]
                    )
                )
                attempted.append(rollout_id)

        backend.run_sync(lambda tx, r=rollouts, a=attempts, q=queued: _write_rollouts(tx, r, a, q), write=True)
    long_id = "ro-long"
    long_rollout = Rollout(rollout_id=long_id, input={}, start_time=start + n_rollouts, status="running")
    long_attempt = Attempt(rollout_id=long_id, attempt_id="at-long", sequence_id=1, start_time=start)
    backend.run_sync(lambda tx: _write_rollouts(tx, [long_rollout], [long_attempt], []), write=True)
    per_rollout = max(1, n_spans // max(1, len(attempted))) if n_spans else 0
    pending: List[Any] = []

    def flush() -> None:
        spans = list(pending)
        pending.clear()

        def write(tx: Any) -> None:
            tx.insert_spans(spans)
            for span in spans:
                tx.sequence_raise(span.rollout_id, span.sequence_id)

        backend.run_sync(write, write=True)

    made = 0
    for rollout_id in attempted:
        if made >= n_spans:
            break
        attempt_id = "at-" + rollout_id[3:]
        for seq in range(1, per_rollout + 1):
            pending.append(_make_span(rollout_id, attempt_id, seq))
        made += per_rollout
        if len(pending) >= batch * 5:
            flush()
    for seq in range(1, long_spans + 1):
        pending.append(_make_span(long_id, "at-long", seq))
        if len(pending) >= batch * 5:
            flush()
    if pending:
        flush()
    return long_id, attempted


def _queries(long_id: str, n_rollouts: int) -> Dict[str, Callable[[Any], Awaitable[Any]]]:
    middle = max(0, n_rollouts // 4)
    done = ["succeeded", "failed"]
    return {
        "count status (limit=0)": lambda s: s.query_rollouts(status_in=done, limit=0),
        "page 100 rollouts": lambda s: s.query_rollouts(limit=100),
        "page 100 rollouts, status, offset": lambda s: s.query_rollouts(status_in=done, limit=100, offset=middle),
        "page 100 rollouts, rollout_id desc": lambda s: s.query_rollouts(
            sort_by="rollout_id", sort_order="desc", limit=100
        ),
        "page 100 spans of the long rollout": lambda s: s.query_spans(long_id, limit=100),
        "page 100 spans, offset, desc": lambda s: s.query_spans(long_id, sort_order="desc", limit=100, offset=1000),
    }


def _fingerprint(page: Any) -> Tuple[int, List[str]]:
    return page.total, [getattr(i, "span_id", None) or i.rollout_id for i in page.items]


async def _measure(
    store: Any, query: Callable[[Any], Awaitable[Any]], reps: int
) -> Tuple[List[float], List[float], Any]:
    """Wall and CPU milliseconds of each run (the CPU time is steadier on a busy machine), and the last answer."""
    times: List[float] = []
    cpu: List[float] = []
    answer = None
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        page = await query(store)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        answer = _fingerprint(page)
    return times, cpu, answer


def run_backend(kind: str, args: argparse.Namespace, directory: Path) -> Dict[str, Any]:
    from agentlightning.store.backend import WithoutQueryPushdown
    from agentlightning.store.engine import EngineLightningStore

    if kind == "memory":
        from agentlightning_memory.backend import MemoryBackend

        backend: Any = MemoryBackend()
    else:
        from agentlightning_sqlite import SqliteBackend

        backend = SqliteBackend(directory / "query.db")
    t0 = time.perf_counter()
    long_id, _ = build(backend, args.rollouts, args.spans, args.long_spans, args.batch)
    build_s = time.perf_counter() - t0
    pushed = EngineLightningStore(backend, watchdog_interval=None, scan_debounce_seconds=1e9)
    python = EngineLightningStore(WithoutQueryPushdown(backend), watchdog_interval=None, scan_debounce_seconds=1e9)
    results: Dict[str, Any] = {}

    async def main() -> None:
        stats = await pushed.statistics()
        results["_store"] = {
            "rollouts": stats["total_rollouts"],
            "spans": stats["total_spans"],
            "build_seconds": round(build_s, 1),
        }
        for name, query in _queries(long_id, args.rollouts).items():
            await query(pushed)  # warm caches alike for both paths
            fast, fast_cpu, fast_answer = await _measure(pushed, query, args.reps)
            slow, slow_cpu, slow_answer = await _measure(python, query, args.python_reps)
            results[name] = {
                "pushed_p50_ms": round(statistics.median(fast), 2),
                "pushed_p95_ms": round(_percentile(fast, 0.95), 2),
                "pushed_cpu_p95_ms": round(_percentile(fast_cpu, 0.95), 2),
                "python_p50_ms": round(statistics.median(slow), 2),
                "python_p95_ms": round(_percentile(slow, 0.95), 2),
                "python_cpu_p50_ms": round(statistics.median(slow_cpu), 2),
                "same_answer": fast_answer == slow_answer,
            }
            print(f"[query-bench] {kind}: {name}: {results[name]}", file=sys.stderr, flush=True)

    try:
        anyio.run(main)
    finally:
        backend.close()
    return results


def run(args: argparse.Namespace) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "rollouts": args.rollouts,
        "spans": args.spans,
        "long_spans": args.long_spans,
        "target_p95_ms": args.target_ms,
    }
    with tempfile.TemporaryDirectory() as name:
        for kind in args.backends.split(","):
            out[kind] = run_backend(kind, args, Path(name))
    slowest = [
        v["pushed_p95_ms"] for kind in args.backends.split(",") for k, v in out[kind].items() if not k.startswith("_")
    ]
    out["max_pushed_p95_ms"] = max(slowest) if slowest else None
    out["all_same_answers"] = all(
        v["same_answer"] for kind in args.backends.split(",") for k, v in out[kind].items() if not k.startswith("_")
    )
    return out


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollouts", type=int, default=100_000)
    parser.add_argument("--spans", type=int, default=2_000_000)
    parser.add_argument("--long-spans", type=int, default=5_000, help="spans of the rollout the span pages read")
    parser.add_argument("--batch", type=int, default=2_000, help="rollouts per write transaction (spans: 5x)")
    parser.add_argument("--reps", type=int, default=30, help="runs of each pushed-down query")
    parser.add_argument("--python-reps", type=int, default=5, help="runs of each query on the Python path")
    parser.add_argument("--backends", default="sqlite,memory")
    parser.add_argument("--target-ms", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="small N (2,000 rollouts, 40,000 spans): a smoke test")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    if args.quick:
        args.rollouts, args.spans, args.long_spans, args.reps, args.python_reps = 2_000, 40_000, 2_000, 10, 3
    result = run(args)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0 if result["all_same_answers"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
