"""``import agentlightning`` time in fresh interpreters: ours, and upstream v0.3 when its python is given.

    python tests/benchmarks/import_time.py                                   # ours, 5 fresh interpreters
    python tests/benchmarks/import_time.py --upstream-python .venv-up/bin/python --reps 3 --json

Each repetition starts a new interpreter that runs ``import agentlightning`` under ``-X importtime``; recorded per run:
the wall-clock of the whole process, its CPU seconds (user + sys, steadier than wall time on a shared machine), and
the cumulative import time of the ``agentlightning`` package that ``-X importtime`` reports. The same figures for a
bare interpreter (``pass``) are the floor. Runs alternate between the interpreters; medians are reported.
Upstream pulls in litellm, which fetches a price list over the network at import unless
``LITELLM_LOCAL_MODEL_COST_MAP=True`` (set here, so an offline machine does not wait on retries).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONWARNINGS": "ignore"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _package_import_us(stderr: str, package: str) -> Optional[int]:
    """Cumulative microseconds of ``package`` from ``-X importtime`` output (its top-level line)."""
    for line in stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].rstrip() == f" {package}":
            return int(parts[1])
    return None


def one_run(python: str, code: str, timeout: float) -> Dict[str, Any]:
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(
        [python, "-X", "importtime", "-c", code], check=False, capture_output=True, text=True, env=ENV, timeout=timeout
    )
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{python} -c {code!r} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "importtime_s": (_package_import_us(proc.stderr, "agentlightning") or 0) / 1e6,
    }


def _summary(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {"reps": len(runs)}
    for key in ("wall_s", "cpu_s", "importtime_s"):
        values = [r[key] for r in runs]
        out[key] = round(statistics.median(values), 4)
        out[f"{key}_min"] = round(min(values), 4)
        out[f"{key}_max"] = round(max(values), 4)
    return out


def measure(pythons: Dict[str, str], reps: int, timeout: float = 600.0) -> Dict[str, Any]:
    """Median figures per named interpreter (plus ``<name>-bare``: the same interpreter running ``pass``)."""
    runs: Dict[str, List[Dict[str, Any]]] = {}
    for _ in range(reps):
        for name, python in pythons.items():
            runs.setdefault(name, []).append(one_run(python, "import agentlightning", timeout))
            runs.setdefault(f"{name}-bare", []).append(one_run(python, "pass", timeout))
    result = {name: _summary(values) for name, values in runs.items()}
    if "ours" in result and "upstream" in result:
        ours, up = result["ours"], result["upstream"]
        result["speedup"] = {
            key: round(up[key] / ours[key], 1) if ours[key] else None for key in ("wall_s", "cpu_s", "importtime_s")
        }
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter with our agentlightning installed")
    parser.add_argument("--upstream-python", default=None, help="interpreter with agentlightning==0.3.0 installed")
    parser.add_argument("--reps", type=int, default=5, help="fresh interpreters per variant")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    pythons = {"ours": args.python}
    if args.upstream_python:
        pythons["upstream"] = args.upstream_python
    result = measure(pythons, args.reps)
    if args.json:
        print(json.dumps(result))
        return 0
    for name, row in result.items():
        print(f"{name:16s} " + "  ".join(f"{k}={v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
