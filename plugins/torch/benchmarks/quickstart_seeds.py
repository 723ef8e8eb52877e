"""Run the README's ``agl quickstart`` N times (different seeds, the default seed repeated) and print a table of
seconds, steps and rollouts to held-out reward 0.9 and the final held-out reward.

    python plugins/torch/benchmarks/quickstart_seeds.py --seeds 0,0,0,1,2,3,4,5,6,7 [-- extra agl quickstart flags]

Each run is a fresh ``agl quickstart --seed S --quiet --run-dir ...`` process, one after the other; the load average
before each run is printed with it, since wall-clock figures mean little on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional


def _run(seed: int, run_dir: str, extra: List[str]) -> Dict[str, Any]:
    agl = os.path.join(os.path.dirname(sys.executable), "agl")  # the README's command, from this environment
    base = [agl] if os.path.exists(agl) else [sys.executable, "-c", "from agentlightning.cli import main; main()"]
    command = [*base, "quickstart", "--seed", str(seed), "--quiet"]
    command += ["--run-dir", run_dir, *extra]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    started = time.time()
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    wall = time.time() - started
    path = os.path.join(run_dir, "summary.json")
    if done.returncode != 0 or not os.path.exists(path):
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        return {"seed": seed, "error": f"exit {done.returncode}", "load": load, "command_seconds": wall}
    with open(path, encoding="utf-8") as f:
        summary = json.load(f)
    summary.pop("history", None)
    return {"seed": seed, "load": load, "command_seconds": wall, **summary}


def _fmt(value: Optional[float], pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def table(rows: List[Dict[str, Any]]) -> str:
    head = (
        "| run | seed | load avg (1 min) | s to 0.9 | steps to 0.9 | rollouts to 0.9 | final held-out | "
        "train s | rollouts/s |"
    )
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for i, r in enumerate(rows, 1):
        if "error" in r:
            lines.append(f"| {i} | {r['seed']} | {r['load']:.1f} | {r['error']} | | | | | |")
            continue
        lines.append(
            f"| {i} | {r['seed']} | {r['load']:.1f} | {_fmt(r['seconds_to_val_0.9'], '{:.0f}')} | "
            f"{_fmt(r.get('steps_to_val_0.9'), '{}')} | {_fmt(r.get('rollouts_to_val_0.9'), '{}')} | "
            f"{r['val_reward_end']:.3f} | {r['train_seconds']:.0f} | {r['rollouts_per_second']:.0f} |"
        )
    reached = [r for r in rows if r.get("seconds_to_val_0.9") is not None]
    lines.append("")
    lines.append(f"reached 0.9 in {len(reached)} of {len(rows)} runs")
    if reached:
        secs = sorted(r["seconds_to_val_0.9"] for r in reached)
        lines.append(f"seconds to 0.9: median {secs[len(secs) // 2]:.0f}, max {secs[-1]:.0f}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,0,0,1,2,3,4,5,6,7", help="comma-separated seeds, one run each")
    parser.add_argument("--keep", metavar="DIR", help="keep the run directories under DIR (default: a temp dir)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("extra", nargs="*", help="more agl quickstart flags (after --)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    root = args.keep or tempfile.mkdtemp(prefix="quickstart-seeds-")
    rows = []
    try:
        for i, seed in enumerate(seeds):
            row = _run(seed, os.path.join(root, f"run-{i}-seed-{seed}"), args.extra)
            rows.append(row)
            print(
                f"run {i + 1}/{len(seeds)} seed {seed}: to 0.9 {_fmt(row.get('seconds_to_val_0.9'), '{:.0f}')} s, "
                f"final {_fmt(row.get('val_reward_end'), '{:.3f}')}",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(table(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)
    return 0 if all(r.get("seconds_to_val_0.9") is not None for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
