"""Dashboard page times on a big store: the REST queries behind each view, and each view in headless Chromium.

    python tests/benchmarks/dashboard_pages.py                          # 100,000 rollouts, 2,000,000 spans
    python tests/benchmarks/dashboard_pages.py --rollouts 2000 --spans 40000 --reps 5   # a smoke run

The SQLite store is built as ``query_bench.py`` builds it (direct backend writes; a status mix; one rollout with
``--long-spans`` spans), then served by ``agl store serve`` in its own process. Reported: p50/p95 milliseconds of
``--reps`` runs of each REST query the dashboard sends (over HTTP, as the page does), and, when Chromium and its
driver are installed, the time from navigation until each view shows its data (``main[data-loaded]``), the rewards
view with an empty reward cache (the rewards of the latest 200 finished rollouts, in one request). "shown": the main
table is there (``main[data-shown]``; the rollouts view then fills in rewards); "loaded": everything is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2] / "plugins" / "dashboard" / "browser_tests"))

AGL = [sys.executable, "-c", "from agentlightning.cli.app import main; main()"]


def _p(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rest_queries(n_rollouts: int) -> Dict[str, Tuple[str, Dict[str, Any]]]:
    page = {"limit": 50, "sort_by": "start_time", "sort_order": "desc"}
    return {
        "rollouts: first page (newest 50)": ("rollouts", page),
        "rollouts: status filter": ("rollouts", {**page, "status_in": ["failed"]}),
        "rollouts: id search": ("rollouts", {**page, "rollout_id_contains": "0001234"}),
        "rollouts: page at offset n/2": ("rollouts", {**page, "offset": n_rollouts // 2}),
        "attempts of a rollout": ("rollouts/ro-000000001/attempts", {"limit": 100, "sort_by": "sequence_id"}),
        "traces: spans of the long attempt (1,000)": (
            "spans",
            {"rollout_id": "ro-long", "attempt_id": "at-long", "limit": 1000, "sort_by": "sequence_id"},
        ),  # fmt: skip
        "token warning: spans of a rollout (200)": ("spans", {"rollout_id": "ro-000000000", "limit": 200}),
        "rewards: latest 200 finished": (
            "rollouts",
            {"status_in": ["succeeded", "failed"], "sort_by": "start_time", "sort_order": "desc", "limit": 200},
        ),  # fmt: skip
        "rewards: final rewards of the newest 200 rollouts (one request)": (
            "rollouts/rewards",
            {"rollout_id_in": [f"ro-{i:09d}" for i in range(max(0, n_rollouts - 200), n_rollouts)]},
        ),  # fmt: skip
        "resources page": ("resources", {"sort_by": "create_time", "sort_order": "desc", "limit": 21}),
        "runners page": ("workers", {"sort_by": "worker_id", "limit": 50}),
        "statistics": ("statistics", {}),
    }


def measure_rest(api: httpx.Client, n_rollouts: int, reps: int) -> Dict[str, Dict[str, float]]:
    out: Dict[str, Dict[str, float]] = {}
    for label, (path, params) in rest_queries(n_rollouts).items():
        times: List[float] = []
        for _ in range(reps):
            t0 = time.perf_counter()
            answer = api.get(path, params=params)
            times.append((time.perf_counter() - t0) * 1000)
            answer.raise_for_status()
        out[label] = {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(_p(times, 0.95), 1)}
    return out


def measure_browser(dashboard: str, reps: int) -> Dict[str, Dict[str, float]]:
    from browser import CHROMIUM_NAMES, DRIVER_NAMES, find, start_browser

    chromium, driver_path = find(CHROMIUM_NAMES, "AGL_CHROMIUM"), find(DRIVER_NAMES, "AGL_CHROMEDRIVER")
    if chromium is None or driver_path is None:
        return {}
    driver = start_browser(chromium, driver_path)
    views = {"rollouts": "rollouts", "traces (long attempt, tree)": "traces?rollout=ro-long&tab=tree",
             "resources": "resources", "runners": "runners", "rewards (cold reward cache)": "rewards"}  # fmt: skip
    out: Dict[str, Dict[str, float]] = {}
    marks = "const d = document.getElementById('main').dataset; return [d.shown || '', d.loaded || '']"
    try:
        for label, view in views.items():
            shown: List[float] = []
            loaded: List[float] = []
            for _ in range(reps):
                driver.get("about:blank")
                t0 = time.perf_counter()
                driver.get(dashboard + "#/" + view)
                name = view.split("?", maxsplit=1)[0]
                first: Any = None
                while True:
                    shown_mark, loaded_mark = driver.execute_script(marks)
                    now = time.perf_counter()
                    if first is None and shown_mark.startswith(name):
                        first = now
                    if loaded_mark.startswith(name):
                        break
                    if now - t0 > 120:
                        raise TimeoutError(f"view {view} did not load in 120 s")
                    time.sleep(0.01)
                shown.append(((first or now) - t0) * 1000)
                loaded.append((now - t0) * 1000)
            out[label] = {
                "shown_p50_ms": round(statistics.median(shown), 1),
                "shown_p95_ms": round(_p(shown, 0.95), 1),
                "p50_ms": round(statistics.median(loaded), 1),
                "p95_ms": round(_p(loaded, 0.95), 1),
            }
    finally:
        driver.quit()
    return out


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollouts", type=int, default=100_000)
    parser.add_argument("--spans", type=int, default=2_000_000)
    parser.add_argument("--long-spans", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--browser-reps", type=int, default=5)
    parser.add_argument("--dir", default=None, help="folder for the store file (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="measure the store file left in --dir by an earlier run")
    args = parser.parse_args(argv)

    from agentlightning_sqlite import SqliteBackend
    from query_bench import build

    directory = Path(args.dir or tempfile.mkdtemp(prefix="agl-dashboard-bench-"))
    path = directory / "big.db"
    t0 = time.perf_counter()
    if not (args.reuse and path.exists()):
        backend = SqliteBackend(path)
        build(backend, args.rollouts, args.spans, args.long_spans, args.batch)
        backend.close()
    build_s = time.perf_counter() - t0
    server = subprocess.Popen([*AGL, "store", "serve", "--store", f"sqlite:///{path}", "--port", "0"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().split()[1]
        with httpx.Client(base_url=endpoint + "/v1/agl/", timeout=120) as api:
            rest = measure_rest(api, args.rollouts, args.reps)
        browser = measure_browser(endpoint + "/dashboard/", args.browser_reps)
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = {"rollouts": args.rollouts, "spans": args.spans, "build_s": round(build_s, 1),
              "file_mb": round(path.stat().st_size / 2**20), "rest": rest, "browser": browser}  # fmt: skip
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
