"""``agl export`` on a big SQLite store: rate and peak memory, at two store sizes, in fresh processes.

    python tests/benchmarks/export_bench.py                       # 100,000 rollouts (and 10,000 for comparison)
    python tests/benchmarks/export_bench.py --rollouts 2000 --json

The store is filled by direct backend writes (as ``query_bench.py`` does): every rollout succeeded, with one attempt,
an LLM call span carrying prompt/response token ids and chat messages, and a reward span. Each export then runs in a
new interpreter (``--child``) that opens the store by URL and calls
:func:`agentlightning.training.export_traces`; it reports its own peak RSS (``ru_maxrss``), so filling the store does
not count. Memory is bounded when the peak at the large size is about the peak at the small one. Before the exports,
another fresh interpreter times one page of ``query_rollouts`` at the start and at the end of the store, read by
offset and read by key (``start_time_from``), which is what a page of the export costs at that point.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import anyio


def _spans(rollout_id: str, attempt_id: str, index: int) -> List[Any]:
    from agentlightning.testing.store import make_span

    llm = make_span(
        rollout_id,
        attempt_id,
        1,
        name="openai.chat.completion",
        attributes={
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": f"keyword {index}",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "ABCD"[index % 4],
            "prompt_token_ids": list(range(index % 7, index % 7 + 24)),
            "response_token_ids": [40 + index % 4, 2],
        },
    )
    reward = make_span(
        rollout_id,
        attempt_id,
        2,
        name="agentlightning.annotation",
        attributes={"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": float(index % 2)},
    )
    return [llm, reward]


def fill(path: Path, n: int, batch: int = 2000) -> float:
    from agentlightning.types.core import Attempt, Rollout
    from agentlightning_sqlite import SqliteBackend

    began = time.perf_counter()
    backend = SqliteBackend(path)
    try:
        for start in range(0, n, batch):
            rollouts, attempts, spans = [], [], []
            for i in range(start, min(n, start + batch)):
                rid, aid = f"ro-{i:012x}", f"at-{i:08x}"
                now = 1.7e9 + i
                rollouts.append(Rollout(rollout_id=rid, input={"i": i}, start_time=now, end_time=now + 1,
                                        status="succeeded", mode="train"))  # fmt: skip
                attempts.append(Attempt(rollout_id=rid, attempt_id=aid, sequence_id=1, start_time=now,
                                        end_time=now + 1, status="succeeded"))  # fmt: skip
                spans.extend(_spans(rid, aid, i))

            def write(tx: Any, rollouts: Any = rollouts, attempts: Any = attempts, spans: Any = spans) -> None:
                tx.insert_rollouts(rollouts)
                for attempt in attempts:
                    tx.insert_attempt(attempt)
                tx.insert_spans(spans)

            backend.run_sync(write, write=True)
    finally:
        backend.close()
    return time.perf_counter() - began


def child(url: str, output: str, fmt: str, page_size: int) -> Dict[str, Any]:
    from agentlightning.store import open_store  # sqlite:// comes from the installed agentlightning-sqlite
    from agentlightning.training import ExportFilter, export_traces

    async def main() -> Any:
        async with open_store(url) as store:
            return await export_traces(
                store, output, format=fmt, filter=ExportFilter(min_reward=0.0), page_size=page_size
            )

    stats = anyio.run(main)
    return {
        "format": fmt,
        "rollouts": stats.rollouts_exported,
        "records": stats.records,
        "seconds": round(stats.seconds, 2),
        "rollouts_per_s": round(stats.rollouts_per_second, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "output_mb": round(os.path.getsize(output) / 1e6, 1),
    }


def page_costs(url: str, n: int, page_size: int, repeats: int = 7) -> Dict[str, float]:
    """Milliseconds (median of ``repeats``) of one ``query_rollouts`` page at the start and at the end of the store,
    read by offset (``limit``/``offset``, as export did) and by key (``start_time_from`` + ``sort_by``, as it does)."""
    import statistics

    from agentlightning.store import open_store

    async def main() -> Dict[str, float]:
        async with open_store(url) as store:
            first = (await store.query_rollouts(sort_by="start_time", limit=1)).items[0].start_time
            tail = await store.query_rollouts(sort_by="start_time", limit=1, offset=max(0, n - page_size))
            last = tail.items[0].start_time
            queries = {
                "offset_first_ms": dict(limit=page_size, offset=0),
                "offset_last_ms": dict(limit=page_size, offset=max(0, n - page_size)),
                "key_first_ms": dict(start_time_from=first, sort_by="start_time", limit=page_size),
                "key_last_ms": dict(start_time_from=last, sort_by="start_time", limit=page_size),
            }
            out = {}
            for name, kwargs in queries.items():
                times = []
                for _ in range(repeats):
                    began = time.perf_counter()
                    await store.query_rollouts(**kwargs)  # type: ignore[arg-type]
                    times.append((time.perf_counter() - began) * 1000)
                out[name] = round(statistics.median(times), 2)
            return out

    return anyio.run(main)


def run(sizes: List[int], formats: List[str], page_size: int) -> List[Dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="agl-export-bench-") as directory:
        for n in sizes:
            path = Path(directory) / f"store-{n}.db"
            filled = fill(path, n)
            done = subprocess.run(
                [sys.executable, __file__, "--pages", f"sqlite:///{path}", str(n), str(page_size)],
                check=False, capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"page costs of {n} rollouts failed:\n{done.stderr}")
            results.append({"store_rollouts": n, "format": "pages", **json.loads(done.stdout.strip().splitlines()[-1])})
            for fmt in formats:
                output = str(Path(directory) / f"out-{n}.{'parquet' if fmt == 'parquet' else 'jsonl'}")
                done = subprocess.run(
                    [sys.executable, __file__, "--child", f"sqlite:///{path}", output, fmt, str(page_size)],
                    check=False, capture_output=True, text=True,
                )  # fmt: skip
                if done.returncode != 0:
                    raise RuntimeError(f"export of {n} rollouts as {fmt} failed:\n{done.stderr}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                result.update(store_rollouts=n, fill_seconds=round(filled, 1))
                results.append(result)
                os.remove(output)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--pages":
        _, _, url, n, page_size = sys.argv
        print(json.dumps(page_costs(url, int(n), int(page_size))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, url, output, fmt, page_size = sys.argv
        print(json.dumps(child(url, output, fmt, int(page_size))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollouts", type=int, default=100_000, help="the large store (default 100,000)")
    parser.add_argument("--formats", nargs="+", default=["traces", "triplets"])
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = sorted({max(1, args.rollouts // 10), args.rollouts})
    results = run(sizes, args.formats, args.page_size)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'store rollouts':>14} {'format':>9} {'exported':>9} {'seconds':>8} {'rollouts/s':>11} {'peak RSS MB':>12}")
    for r in results:
        if r["format"] == "pages":
            continue
        print(f"{r['store_rollouts']:>14} {r['format']:>9} {r['rollouts']:>9} {r['seconds']:>8} "
              f"{r['rollouts_per_s']:>11} {r['peak_rss_mb']:>12}")  # fmt: skip
    print(f"\n{'store rollouts':>14} {'page by offset: first, last ms':>31} {'page by key: first, last ms':>28}")
    for r in results:
        if r["format"] == "pages":
            print(f"{r['store_rollouts']:>14} {r['offset_first_ms']:>15} {r['offset_last_ms']:>15} "
                  f"{r['key_first_ms']:>13} {r['key_last_ms']:>14}")  # fmt: skip


if __name__ == "__main__":
    main()
