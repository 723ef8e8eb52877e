"""Runner overhead per rollout: the store calls and tracing that ``LitAgentRunner`` adds around an agent.

    python tests/benchmarks/runner_overhead.py                  # human-readable
    python tests/benchmarks/runner_overhead.py --rollouts 500 --json

The agent is trivial (it emits one message span and returns a reward), so the figure is pure runner cost:
dequeue, resources lookup, trace context, reward span, final status. Baseline: the same agent function called
directly N times inside an open trace context of the same tracer (so the agent's own emit costs are excluded
from the difference). Measured per store (memory in-process; SQLite file; HTTP) and per tracer (DummyTracer records
nothing; OtelTracer batches real OpenTelemetry spans into the store). "http" is what a runner process sees when
the main process serves a memory store: a LightningStoreClient over 127.0.0.1. Rounds alternate between modes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any, Dict, List

import agentlightning as agl
import anyio
from agentlightning.runner import LitAgentRunner

RESOURCES = {"llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="m")}


def body(task: int, llm: agl.LLM) -> float:
    agl.emit_message(f"task {task}")
    return 1.0


async def body_async(task: int, llm: agl.LLM) -> float:
    return body(task, llm)


class _ServedStore:
    """An HTTP client to a thread-mode LightningStoreServer over a memory store; stops the server on close."""

    def __init__(self) -> None:
        from agentlightning_memory import InMemoryLightningStore
        from agentlightning_server.server import LightningStoreServer

        self.server = LightningStoreServer(InMemoryLightningStore(watchdog_interval=None), "127.0.0.1", 0).start()
        self.client = self.server.client()

    async def __aenter__(self) -> Any:
        return self.client

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.close()
        self.server.stop()


def make_store(kind: str, tmp: str) -> Any:
    if kind == "memory":
        from agentlightning_memory import InMemoryLightningStore

        return InMemoryLightningStore(watchdog_interval=None)
    if kind == "http":
        return _ServedStore()
    from agentlightning_sqlite import SqliteLightningStore

    return SqliteLightningStore(f"{tmp}/bench-{time.monotonic_ns()}.db", watchdog_interval=None)


def make_tracer(kind: str) -> Any:
    if kind == "dummy":
        from agentlightning.tracer.dummy import DummyTracer

        return DummyTracer()
    from agentlightning.tracer.otel import OtelTracer
    from opentelemetry.sdk.trace import TracerProvider

    return OtelTracer(tracer_provider=TracerProvider())


async def direct(n: int, tracer_kind: str, store_kind: str, tmp: str) -> float:
    """Seconds for n direct calls of the agent function inside one trace context (no runner)."""
    tracer = make_tracer(tracer_kind)
    async with make_store(store_kind, tmp) as store:
        with tracer.lifespan(store):
            llm = RESOURCES["llm"]
            started = time.perf_counter()
            async with tracer.trace_context("direct"):
                for i in range(n):
                    await body_async(i, llm)
            return time.perf_counter() - started


async def via_runner(n: int, tracer_kind: str, store_kind: str, tmp: str) -> float:
    """Seconds for n rollouts enqueued beforehand and executed by one LitAgentRunner."""
    tracer = make_tracer(tracer_kind)
    async with make_store(store_kind, tmp) as store:
        await store.add_resources(RESOURCES)
        await store.enqueue_many_rollouts([agl.EnqueueRolloutRequest(input=i, mode="train") for i in range(n)])
        runner = LitAgentRunner(tracer=tracer, max_rollouts=n, poll_interval=0.01, heartbeat_interval=0)
        with runner.run_context(agent=agl.rollout(body_async), store=store):
            started = time.perf_counter()
            await runner.iter()
            elapsed = time.perf_counter() - started
        done = (await store.query_rollouts(status_in=["succeeded"], limit=0)).total
        assert done == n, f"only {done}/{n} rollouts succeeded"
        return elapsed


def measure(n: int, rounds: int, tracer_kind: str, store_kind: str) -> Dict[str, float]:
    runs: Dict[str, List[float]] = {"direct": [], "runner": []}
    with tempfile.TemporaryDirectory() as tmp:
        for fn in (direct, via_runner):  # warm-up: imports, first connections
            anyio.run(fn, 5, tracer_kind, store_kind, tmp)
        for _ in range(rounds):
            for name, fn in (("direct", direct), ("runner", via_runner)):
                runs[name].append(anyio.run(fn, n, tracer_kind, store_kind, tmp) / n)
    d, r = statistics.median(runs["direct"]), statistics.median(runs["runner"])
    return {"direct_ms": d * 1e3, "runner_ms": r * 1e3, "overhead_ms": (r - d) * 1e3, "rollouts_per_s": 1.0 / r}


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollouts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = {}
    for store_kind in ("memory", "sqlite", "http"):
        for tracer_kind in ("dummy", "otel"):
            results[f"{store_kind}/{tracer_kind}"] = measure(args.rollouts, args.rounds, tracer_kind, store_kind)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'store/tracer':<16} {'direct ms':>10} {'runner ms':>10} {'overhead ms':>12} {'rollouts/s':>11}")
    for key, r in results.items():
        print(
            f"{key:<16} {r['direct_ms']:>10.3f} {r['runner_ms']:>10.3f} {r['overhead_ms']:>12.3f} "
            f"{r['rollouts_per_s']:>11.1f}"
        )


if __name__ == "__main__":
    main()
