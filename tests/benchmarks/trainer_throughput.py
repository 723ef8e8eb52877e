"""End-to-end Trainer throughput: rollouts/s of a trivial agent with 4 runner processes.

    python tests/benchmarks/trainer_throughput.py                          # memory store, 400 rollouts
    python tests/benchmarks/trainer_throughput.py --store sqlite --n 1000 --json

The agent returns a reward at once, so the figure is the framework's own cost per rollout: the Baseline algorithm
enqueueing and waiting, the runners dequeueing, tracing the reward, and reporting through the store. Two figures:
``rollouts_per_s`` over the whole ``fit`` (runner process start-up and shutdown included) and ``steady_rollouts_per_s``
over the window the store saw rollouts run in (first attempt start to last rollout end).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import agentlightning as agl
import anyio


@agl.rollout  # type: ignore[untyped-decorator]
async def trivial_agent(task: int, llm: agl.LLM) -> float:
    """Return a reward at once (no model call)."""
    return 1.0


async def _window(store: Any) -> Dict[str, Any]:
    """Succeeded rollouts, and the seconds from the first attempt's start to the last rollout's end."""
    rollouts = await store.query_rollouts()
    starts = []
    for rollout in rollouts:
        attempt = await store.get_latest_attempt(rollout.rollout_id)
        if attempt is not None and attempt.start_time is not None:
            starts.append(attempt.start_time)
    ends = [r.end_time for r in rollouts if r.end_time is not None]
    succeeded = sum(1 for r in rollouts if r.status == "succeeded")
    return {"succeeded": succeeded, "window_s": (max(ends) - min(starts)) if starts and ends else None}


def run(args: argparse.Namespace) -> Dict[str, Any]:
    from agentlightning.algorithm import Baseline
    from agentlightning.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="agl-trainer-bench-") as tmp:
        store = None if args.store == "memory" else f"sqlite:///{tmp}/trainer.db"
        trainer = Trainer(
            algorithm=Baseline(polling_interval=0.05, span_verbosity="none", max_queue_length=args.queue),
            store=store,
            n_runners=args.runners,
            strategy="multiprocess",
            runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.02, "heartbeat_interval": 5},
            initial_resources={"llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="m")},
            progress=False,
        )
        started = time.perf_counter()
        trainer.fit(trivial_agent, list(range(args.n)))
        elapsed = time.perf_counter() - started
        window = anyio.run(_window, trainer.store)
    if window["succeeded"] != args.n:
        raise SystemExit(f"only {window['succeeded']} of {args.n} rollouts succeeded")
    steady = window["window_s"]
    return {
        "store": args.store,
        "n": args.n,
        "runners": args.runners,
        "seconds": round(elapsed, 3),
        "rollouts_per_s": round(args.n / elapsed, 1),
        "steady_seconds": round(steady, 3) if steady else None,
        "steady_rollouts_per_s": round(args.n / steady, 1) if steady else None,
    }


def parse(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--n", type=int, default=400, help="rollouts")
    parser.add_argument("--runners", type=int, default=4, help="runner processes")
    parser.add_argument("--queue", type=int, default=64, help="rollouts the algorithm keeps in flight")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:24s}{value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
