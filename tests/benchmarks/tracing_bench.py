"""Tracing benchmarks: tracer overhead per LLM call, and adapter throughput.

    python tests/benchmarks/tracing_bench.py                 # both, human-readable
    python tests/benchmarks/tracing_bench.py --calls 300 --json

1. Overhead: the same openai client calls the local OpenAI test server (``return_token_ids`` on), bare (no
   instrumentation, no trace context) and instrumented inside ``OtelTracer.trace_context`` writing to the in-memory
   store (falls back to a recording fake store if agentlightning-memory is not installed). Blocks of calls
   alternate between the two modes to spread machine noise evenly; the figure is the difference of the medians,
   in wall time and in CPU time of the calling thread (the agent's hot path; steadier on a loaded machine). The
   whole process's CPU per call (client, flusher thread, store, and the server, which runs in this process too) is
   reported as well.
2. Adapter throughput: ``TracerTraceToTriplet.adapt`` on synthetic traces of 10, 100 and 1,000 spans (one session,
   agents, LLM calls with token ids (a quarter emitted at the root so ``repair_hierarchy`` has work), rewards).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Dict, List

import anyio
import anyio.to_thread


class _FakeStore:
    def __init__(self) -> None:
        self.n = 0

    async def get_many_span_sequence_ids(self, pairs: Any) -> List[int]:
        start, self.n = self.n, self.n + len(pairs)
        return list(range(start, self.n))

    async def add_many_spans(self, spans: Any) -> Any:
        return spans


def _store() -> Any:
    try:
        from agentlightning_memory import InMemoryLightningStore

        return InMemoryLightningStore(watchdog_interval=None)
    except ImportError:
        return _FakeStore()


async def bench_overhead(calls: int, block: int, stream: bool) -> Dict[str, float]:
    import openai
    from agentlightning.instrumentation import instrument_openai, uninstrument_openai
    from agentlightning.testing.openai_server import OpenAITestServer
    from agentlightning.tracer.otel import OtelTracer

    store = _store()
    tracer = OtelTracer(instrument=False)
    tracer.init_worker(0, store)
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2? " * 8}]
    bare: List[float] = []
    traced: List[float] = []
    bare_cpu: List[float] = []
    traced_cpu: List[float] = []
    process_cpu = {"bare": 0.0, "traced": 0.0}
    with OpenAITestServer(lambda r: "The answer is four, as everyone knows.") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)

        def call() -> Any:
            c0, t0 = time.thread_time(), time.perf_counter()
            if stream:
                for _ in client.chat.completions.create(
                    model="m", messages=messages, stream=True, extra_body={"return_token_ids": True}
                ):
                    pass
            else:
                client.chat.completions.create(model="m", messages=messages, extra_body={"return_token_ids": True})
            return time.perf_counter() - t0, time.thread_time() - c0

        def run_block(mode: str, out: List[float], cpu: List[float]) -> None:
            p0 = time.process_time()
            for _ in range(block):
                wall, thread_cpu = call()
                out.append(wall)
                cpu.append(thread_cpu)
            if mode == "bare":  # traced blocks are timed around the trace context, final flush included
                process_cpu[mode] += time.process_time() - p0

        for _ in range(10):
            call()  # warm up connections
        rollout = 0
        while len(bare) < calls:
            await anyio.to_thread.run_sync(run_block, "bare", bare, bare_cpu)
            instrument_openai()
            try:
                if hasattr(store, "start_rollout"):
                    attempted = await store.start_rollout({"i": rollout})
                    ids = (attempted.rollout_id, attempted.attempt.attempt_id)
                else:
                    ids = (f"r{rollout}", "a")
                rollout += 1
                async with tracer.trace_context(rollout_id=ids[0], attempt_id=ids[1]):
                    p0 = time.process_time()
                    await anyio.to_thread.run_sync(run_block, "traced", traced, traced_cpu)
                p1 = time.process_time()  # includes the final flush at exit
                process_cpu["traced"] += p1 - p0
            finally:
                uninstrument_openai()
    tracer.teardown_worker(0)
    b, t = statistics.median(bare) * 1e3, statistics.median(traced) * 1e3
    bc, tc = statistics.median(bare_cpu) * 1e3, statistics.median(traced_cpu) * 1e3
    n = len(bare)
    return {
        "bare_ms": b,
        "traced_ms": t,
        "overhead_ms": t - b,
        "overhead_pct": (t - b) / b * 100,
        "bare_thread_cpu_ms": bc,
        "traced_thread_cpu_ms": tc,
        "thread_cpu_overhead_ms": tc - bc,
        "bare_process_cpu_ms": process_cpu["bare"] / n * 1e3,
        "traced_process_cpu_ms": process_cpu["traced"] / len(traced) * 1e3,
        "calls": n,
    }


def synthetic_trace(n: int) -> List[Any]:
    from agentlightning.types.tracer import Span

    spans: List[Any] = []
    t = 0.0

    def add(span_id: str, name: str, parent: Any, start: float, end: float, attrs: Dict[str, Any]) -> None:
        spans.append(
            Span.from_attributes(
                rollout_id="r",
                attempt_id="a",
                sequence_id=len(spans),
                trace_id="t",
                span_id=span_id,
                parent_id=parent,
                name=name,
                attributes=attrs,
                start_time=start,
                end_time=end,
            )
        )

    per_agent = 10
    agents = max(1, (n - 1) // (per_agent + 1))
    add("root", "session", None, 0.0, float(n + 10), {})
    i = 0
    for a in range(agents):
        agent_id = f"agent-{a}"
        start = t
        add(agent_id, "agent.node", "root", start, start + per_agent + 1, {"agent.name": f"agent-{a % 3}"})
        for k in range(per_agent - 1):
            if len(spans) >= n - 1:
                break
            parent = "root" if k % 4 == 0 else agent_id
            attrs = {
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "question " * 20,
                "gen_ai.request.model": "m",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "answer " * 20,
                "gen_ai.response.id": f"resp-{i}",
                "prompt_token_ids": list(range(200)),
                "response_token_ids": list(range(50)),
            }
            add(f"llm-{i}", "openai.chat.completion", parent, start + k + 0.1, start + k + 0.9, attrs)
            i += 1
        if len(spans) < n:
            add(
                f"reward-{a}",
                "agentlightning.annotation",
                agent_id,
                start + per_agent,
                start + per_agent + 0.5,
                {"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": 1.0},
            )
        t += per_agent + 1
    while len(spans) < n:
        add(f"extra-{len(spans)}", "tool", "root", t, t + 0.5, {"x": 1})
        t += 1
    return spans[:n]


def bench_adapter(sizes: List[int], min_seconds: float) -> List[Dict[str, float]]:
    from agentlightning.adapter import TracerTraceToTriplet

    adapter = TracerTraceToTriplet()
    out = []
    for n in sizes:
        spans = synthetic_trace(n)
        triplets = adapter.adapt(spans)
        runs, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < min_seconds or runs < 3:
            adapter.adapt(spans)
            runs += 1
        per_run = (time.perf_counter() - t0) / runs
        out.append({"spans": n, "triplets": len(triplets), "ms_per_trace": per_run * 1e3, "spans_per_s": n / per_run})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400, help="LLM calls per mode")
    parser.add_argument("--block", type=int, default=20, help="calls per alternating block")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--min-seconds", type=float, default=1.0, help="minimum time per adapter size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {
        "overhead": anyio.run(bench_overhead, args.calls, args.block, False),
        "overhead_stream": anyio.run(bench_overhead, args.calls // 2, args.block, True),
        "adapter": bench_adapter(args.sizes, args.min_seconds),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key in ("overhead", "overhead_stream"):
        o = result[key]
        print(
            f"{key:16s} wall: bare {o['bare_ms']:.3f} traced {o['traced_ms']:.3f} ms/call "
            f"(+{o['overhead_ms']:.3f} ms, {o['overhead_pct']:.1f}%); calling-thread CPU: bare "
            f"{o['bare_thread_cpu_ms']:.3f} traced {o['traced_thread_cpu_ms']:.3f} ms/call "
            f"(+{o['thread_cpu_overhead_ms']:.3f} ms); process CPU: bare {o['bare_process_cpu_ms']:.3f} traced "
            f"{o['traced_process_cpu_ms']:.3f} ms/call; {o['calls']:.0f} calls each"
        )
    for row in result["adapter"]:
        print(
            f"adapter {row['spans']:5.0f} spans -> {row['triplets']:4.0f} triplets: "
            f"{row['ms_per_trace']:8.2f} ms/trace, "
            f"{row['spans_per_s']:10.0f} spans/s"
        )


if __name__ == "__main__":
    main()
