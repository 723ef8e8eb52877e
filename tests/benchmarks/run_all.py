"""Every benchmark, ours side by side with upstream ``agentlightning==0.3.0``, into one report (``nox -s bench``).

    python tests/benchmarks/run_all.py                     # full run: N=2000 (client-server 600), 3 reps, upstream
    python tests/benchmarks/run_all.py --quick --skip-upstream --results /tmp/bench   # CI smoke test (tiny N)
    python tests/benchmarks/run_all.py --reps 5 --n 5000 --cs-n 1000

Store workload (``store_workload.py`` for ours, ``upstream_workload.py`` in upstream's own virtual environment), in each
span mode of ``--span-modes``: ``single`` adds each span with its own ``add_span`` call (as upstream's tracer does, and
how upstream's usually quoted figures were measured), ``many`` adds a rollout's spans in one ``add_many_spans``,
``runner`` is upstream's runner pattern (``runner_pattern.py``: ``get_latest_resources`` and one ``add_otel_span`` of an
OpenTelemetry SDK span per span, the algorithm polling ``wait_for_rollouts(timeout=0)`` and reading each finished
rollout's spans). The cases below run in turn, one repetition of each before the next repetition starts, so slow drifts
of a shared machine spread over all of them. Ours: memory in process, SQLite in process, HTTP server (its own process)
over SQLite with P runner processes; 1 and 2 HTTP servers over one PostgreSQL (``postgres_servers.py``, when the
PostgreSQL binaries are installed). Upstream: its in-memory store in process, and its client-server store with P runner
processes. Then the anchors (bare ``sqlite3`` batched inserts of the same rows, a loopback HTTP echo, the store client's
own HTTP/1.1 client against httpx on one request mix: ``client_transport_ab.py``), ``import agentlightning`` (ours vs
upstream), tracer overhead and adapter throughput, Trainer throughput, and the scale sweep (N from 2,000 to 20,000, to
200,000 with ``--scale-full``; memory with a budget, SQLite, HTTP: throughput, cost per rollout, peak memory). Results
go to ``<results>/bench-<time>.json`` and ``latest.json``, a chart to ``.png`` (when matplotlib is installed) and the
table to stdout and ``latest.md``.

The upstream environment is made once with uv (``uv venv`` + ``uv pip install agentlightning==0.3.0``; no torch) under
``--upstream-venv`` and reused; ``--upstream-python`` points at an existing one instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import postgres_servers  # noqa: E402  (a sibling script)
import report  # noqa: E402  (a sibling script)

UPSTREAM_SPEC = "agentlightning==0.3.0"
METRICS = ("rollouts_per_s", "spans_per_s", "rollouts_per_cpu_s", "seconds", "store_peak_rss_mb", "add_span_p50_ms")
# (ours case, upstream case, target median ratio of rollouts/s); compared within each span mode
TARGETS = {
    "memory_vs_upstream_memory": ("ours-memory", "upstream-memory", 10.0),
    "sqlite_vs_upstream_memory": ("ours-sqlite", "upstream-memory", 3.0),
    "http_sqlite_vs_upstream_client_server": ("ours-http-sqlite", "upstream-client-server", 10.0),
    **postgres_servers.TARGETS,
}
MODE_TARGETS = {
    "runner": {
        "memory_vs_upstream_memory": 15.0,
        "sqlite_vs_upstream_memory": 5.0,
        "http_sqlite_vs_upstream_client_server": 15.0,
    },
    "single": {"sqlite_vs_upstream_memory": 4.0, "http_sqlite_vs_upstream_client_server": 10.0},
}
"""Targets of one span mode (compared with upstream's same mode) where they differ from :data:`TARGETS`."""
SPAN_MODES = ("single", "many", "runner")
IMPORT_TARGET = 20.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _last_json(text: str) -> Dict[str, Any]:
    """The last JSON object in ``text`` (scripts may print warnings before it, and may indent it)."""
    lines = text.strip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("{"):
            try:
                result: Dict[str, Any] = json.loads("\n".join(lines[i:]))
                return result
            except ValueError:
                continue
    raise RuntimeError(f"no JSON result in output: {text[-2000:]!r}")


def run_json(cmd: Sequence[str], timeout: float, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Run a benchmark script that prints its result as JSON; raise with its stderr tail when it fails."""
    proc = subprocess.run(list(cmd), check=False, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}: {proc.stderr[-3000:]}")
    return _last_json(proc.stdout)


# ---------------------------------------------------------------------------------------------------- upstream venv


def _uv() -> Optional[List[str]]:
    for candidate in (shutil.which("uv"), str(Path(sys.executable).parent / "uv"), str(ROOT / ".venv" / "bin" / "uv")):
        if candidate and os.access(candidate, os.X_OK):
            return [candidate]
    try:
        import uv  # noqa: F401

        return [sys.executable, "-m", "uv"]
    except ImportError:
        return None


def _has_upstream(python: Path) -> bool:
    if not python.exists():
        return False
    code = "import importlib.metadata as m; print(m.version('agentlightning'))"
    proc = subprocess.run([str(python), "-c", code], check=False, capture_output=True, text=True)
    return proc.returncode == 0 and proc.stdout.strip() == UPSTREAM_SPEC.split("==")[1]


def ensure_upstream(venv: Path) -> Path:
    """The python of a virtual environment holding upstream v0.3 (made with uv, or venv + pip, when missing)."""
    python = venv / "bin" / "python"
    if _has_upstream(python):
        return python
    started = time.perf_counter()
    uv = _uv()
    log(f"creating the upstream environment {venv} ({UPSTREAM_SPEC}) with {'uv' if uv else 'venv + pip'}")
    if uv:
        subprocess.run([*uv, "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True)
        subprocess.run([*uv, "pip", "install", "--python", str(python), UPSTREAM_SPEC], check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", UPSTREAM_SPEC], check=True)
    if not _has_upstream(python):
        raise RuntimeError(f"{venv} does not hold {UPSTREAM_SPEC} after installing it")
    log(f"upstream environment ready in {time.perf_counter() - started:.0f} s")
    return python


# ------------------------------------------------------------------------------------------------- workload cases


def _proc_cpu_and_peak(pid: int) -> Dict[str, Optional[float]]:
    """CPU seconds and peak RSS (MB) of a live process, from /proc (None where unavailable)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu: Optional[float] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        peak = None
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
        return {"cpu": cpu, "peak_mb": peak}
    except (OSError, ValueError, IndexError):
        return {"cpu": None, "peak_mb": None}


class OurServer:
    """``python -m agentlightning_server.serve`` over a store URL, in its own process, on 127.0.0.1."""

    def __init__(self, store_url: str) -> None:
        self._reader: Optional[threading.Thread] = None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentlightning_server.serve", "--store", store_url, "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("AGL_STORE_SERVER_LISTENING"):
            self.stop()
            raise RuntimeError(f"our server did not start: {line!r}")
        self.url = line.split()[1]
        self._reader = threading.Thread(target=self.proc.stdout.read, daemon=True)  # never let a full pipe block it
        self._reader.start()
        announced = self.usage()["cpu"]
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        ready = self.usage()["cpu"]
        self.startup_cpu = None if ready is None or announced is None else ready - announced
        """CPU seconds from the announcement to the first answer (opening the store): left out of a run's figures."""

    def _wait_ready(self, timeout: float = 120.0) -> None:
        """Return once the server answered a store call (its statistics, the call each runner makes first). The
        endpoint is announced as soon as the socket is bound; the store is opened (imports, connections, migrations)
        after that and the first store call imports what it runs on, and a run's CPU counted from the announcement
        would charge that start-up to the workload."""
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/v1/agl/statistics", timeout=5) as answer:
                    answer.read()
                return
            except (urllib.error.URLError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"our server at {self.url} did not become ready") from None
                time.sleep(0.02)

    def usage(self) -> Dict[str, Optional[float]]:
        return _proc_cpu_and_peak(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)  # the pipe ended with the process
        if self.proc.stdout is not None and (self._reader is None or not self._reader.is_alive()):
            self.proc.stdout.close()


class Cases:
    """The workload cases, each a callable returning the metrics dict of one run."""

    def __init__(self, args: argparse.Namespace, upstream_python: Optional[Path], tmp: Path, span_mode: str) -> None:
        self.args, self.upstream_python, self.tmp, self.span_mode = args, upstream_python, tmp, span_mode
        self.counter = 0

    def _common(self, n: int, workers: int) -> List[str]:
        a = self.args
        return [
            *("--n", str(n), "--spans", str(a.spans), "--span-bytes", str(a.span_bytes)),
            *("--workers", str(workers), "--span-mode", self.span_mode),
        ]

    def _db(self, name: str) -> str:
        self.counter += 1
        return f"sqlite:///{self.tmp}/{name}-{self.counter}.db"

    def _cleanup(self) -> None:
        for path in self.tmp.glob("*.db*"):
            path.unlink()

    def _ours(self, store: str, n: int, workers: int, extra: Sequence[str] = ()) -> Dict[str, Any]:
        cmd = [sys.executable, self.args.workload_script, "--store", store, *self._common(n, workers), *extra]
        return run_json([*cmd, "--json"], self.args.timeout)

    def ours_memory(self) -> Dict[str, Any]:
        return self._ours("memory://", self.args.n, self.args.workers)

    def ours_sqlite(self) -> Dict[str, Any]:
        try:
            return self._ours(self._db("ours-sqlite"), self.args.n, self.args.workers)
        finally:
            self._cleanup()

    def ours_http_sqlite(self) -> Dict[str, Any]:
        a = self.args
        server = OurServer(self._db("ours-http"))
        try:
            before = server.usage()
            result = self._ours(server.url, a.cs_n, a.processes, ["--processes", str(a.processes)])
            after = server.usage()
        finally:
            server.stop()
            self._cleanup()
        if before["cpu"] is not None and after["cpu"] is not None:
            server_cpu = after["cpu"] - before["cpu"]
            result["server_cpu_seconds"] = round(server_cpu, 3)
            result["server_startup_cpu_seconds"] = server.startup_cpu
            result["cpu_seconds"] = round(result["cpu_seconds"] + server_cpu, 3)
            result["rollouts_per_cpu_s"] = round(result["n"] / result["cpu_seconds"], 1)
        result["store_peak_rss_mb"] = after["peak_mb"]  # the store lives in the server process
        return result

    def _upstream(self, store: str, n: int, workers: int, extra: Sequence[str] = ()) -> Dict[str, Any]:
        assert self.upstream_python is not None
        cmd = [
            str(self.upstream_python),
            str(HERE / "upstream_workload.py"),
            "--store",
            store,
            *self._common(n, workers),
        ]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # ours may be on it (a before/after run)
        return run_json([*cmd, *extra, "--json"], self.args.timeout, env=env)

    def upstream_memory(self) -> Dict[str, Any]:
        return self._upstream("memory", self.args.n, self.args.workers)

    def upstream_client_server(self) -> Dict[str, Any]:
        a = self.args
        return self._upstream("client-server", a.cs_n, a.processes, ["--processes", str(a.processes)])

    def table(self) -> Dict[str, Callable[[], Dict[str, Any]]]:
        """Cases in running order (ours and upstream alternate), named ``<case>/<span mode>``."""
        cases = {"ours-memory": self.ours_memory}
        if self.upstream_python:
            cases["upstream-memory"] = self.upstream_memory
        cases["ours-sqlite"] = self.ours_sqlite
        cases["ours-http-sqlite"] = self.ours_http_sqlite
        cases.update(postgres_servers.cases(self, OurServer))  # 1 and 2 store servers over PostgreSQL
        if self.upstream_python:
            cases["upstream-client-server"] = self.upstream_client_server
        return {f"{name}/{self.span_mode}": case for name, case in cases.items()}


def summarize(runs: List[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    out: Dict[str, Dict[str, float]] = {}
    for metric in METRICS:
        values = [r[metric] for r in runs if isinstance(r.get(metric), (int, float))]
        if values:
            out[metric] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return out


def run_workload(all_cases: Sequence[Cases], reps: int, errors: Dict[str, str]) -> Dict[str, Any]:
    table = {name: case for cases in all_cases for name, case in cases.table().items()}
    results: Dict[str, Any] = {name: {"runs": []} for name in table}
    for rep in range(reps):
        for name, case in table.items():
            log(f"workload rep {rep + 1}/{reps}: {name}")
            try:
                run = case()
                run.setdefault("store_peak_rss_mb", run.get("peak_rss_mb"))  # in process: the algorithm's process
                results[name]["runs"].append(run)
            except Exception as exc:  # noqa: BLE001 - one failing case must not lose the others
                errors[f"workload/{name}/rep{rep + 1}"] = str(exc)[-2000:]
                log(f"  failed: {str(exc)[-500:]}")
    for entry in results.values():
        entry["summary"] = summarize(entry["runs"])
    return results


COMPARISONS = (("single", "single"), ("many", "many"), ("runner", "runner"), ("many", "single"))
"""(our span mode, upstream's span mode) pairs compared. The last one sets our batched span writes against upstream
writing one ``add_span`` per span, its tracer's way and the usual baseline (~170 rollouts/s in memory)."""


def ratios(workload: Dict[str, Any]) -> Dict[str, Any]:
    """Median ratios ours/upstream (rollouts/s; and per CPU second) with the per-repetition ratios' range, for each
    target and each pair of span modes in :data:`COMPARISONS` that ran (keys ``<target>/<mode>`` when both sides ran
    the same mode, ``<target>/<ours>-vs-<upstream>`` otherwise)."""
    out: Dict[str, Any] = {}
    for (ours_mode, up_mode), (name, (ours_case, up_case, default_target)) in (
        (c, t) for c in COMPARISONS for t in TARGETS.items()
    ):
        ours, up = f"{ours_case}/{ours_mode}", f"{up_case}/{up_mode}"
        key = f"{name}/{ours_mode}" if ours_mode == up_mode else f"{name}/{ours_mode}-vs-{up_mode}"
        o, u = workload.get(ours, {}), workload.get(up, {})
        if not o.get("summary") or not u.get("summary"):
            continue
        target = default_target
        if ours_mode == up_mode:
            target = MODE_TARGETS.get(ours_mode, {}).get(name, default_target)
        entry: Dict[str, Any] = {"ours": ours, "upstream": up, "target": target}
        for metric in ("rollouts_per_s", "rollouts_per_cpu_s"):
            if metric not in o["summary"] or metric not in u["summary"]:
                continue
            entry[metric] = round(o["summary"][metric]["median"] / u["summary"][metric]["median"], 2)
            paired = [a[metric] / b[metric] for a, b in zip(o["runs"], u["runs"]) if a.get(metric) and b.get(metric)]
            if paired:
                entry[f"{metric}_range"] = [round(min(paired), 2), round(max(paired), 2)]
        entry["met"] = entry.get("rollouts_per_s", 0.0) >= target
        out[key] = entry
    return out


# ------------------------------------------------------------------------------------------------- other sections


def run_scale(args: argparse.Namespace, tmp: Path, errors: Dict[str, str]) -> List[Dict[str, Any]]:
    """Ours at each N of the sweep (one run each): memory with a span budget (retention on), SQLite in process, and
    our HTTP server over SQLite with P runner processes (its process holds the store: its CPU and peak RSS count).
    A run that fails is recorded in ``errors`` (``scale/<case>/<N>``) and the sweep goes on."""
    rows = []
    stores = {
        "ours-memory-retention": f"memory://?memory_budget_bytes={args.memory_budget}",
        "ours-sqlite": None,
        "ours-http-sqlite": "http",
    }
    for n in args.scale:
        for name, url in stores.items():
            log(f"scale N={n}: {name}")
            server: Optional[OurServer] = None
            cmd = [sys.executable, args.workload_script, "--n", str(n), "--spans", str(args.spans)]
            cmd += ["--span-bytes", str(args.span_bytes), "--workers", str(args.workers)]
            cmd += ["--timeout", str(args.timeout)]  # 200,000 rollouts may take longer than the script's default
            try:
                if url == "http":
                    server = OurServer(f"sqlite:///{tmp}/scale-{n}.db")
                    cmd += ["--store", server.url, "--processes", str(args.processes)]
                    before = server.usage()
                else:
                    cmd += ["--store", url or f"sqlite:///{tmp}/scale-{n}.db"]
                r = run_json([*cmd, "--json"], args.timeout)
                if server is not None:
                    after = server.usage()
                    if before["cpu"] is not None and after["cpu"] is not None:
                        r["cpu_seconds"] += after["cpu"] - before["cpu"]
                    r["peak_rss_mb"] = after["peak_mb"]
            except Exception as exc:  # noqa: BLE001 - one failing run must not lose the sweep's other rows
                errors[f"scale/{name}/{n}"] = str(exc)[-2000:]
                log(f"  failed: {str(exc)[-500:]}")
                continue
            finally:
                if server is not None:
                    server.stop()
                for path in tmp.glob("scale-*.db*"):
                    path.unlink()
            stats = r.get("statistics", {})
            rows.append(
                {
                    "case": name,
                    "n": n,
                    "seconds": r["seconds"],
                    "rollouts_per_s": r["rollouts_per_s"],
                    "ms_per_rollout": round(r["seconds"] / n * 1e3, 4),
                    "cpu_ms_per_rollout": round(r["cpu_seconds"] / n * 1e3, 4),
                    "peak_rss_mb": r["peak_rss_mb"],
                    "evicted_rollouts": stats.get("evicted_rollouts"),
                    "file_mb": round(stats["file_size_bytes"] / 1e6, 1) if stats.get("file_size_bytes") else None,
                }
            )
    return rows


def run_anchors(args: argparse.Namespace, tmp: Path) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    sqlite_cmd = [sys.executable, str(HERE / "sqlite_anchor.py"), "--n", str(args.n), "--spans", str(args.spans)]
    sqlite_cmd += ["--span-bytes", str(args.span_bytes), "--dir", str(tmp), "--json"]
    log("anchor: stdlib sqlite3 batched inserts")
    out["sqlite"] = run_json(sqlite_cmd, args.timeout)
    log("anchor: stdlib sqlite3, one insert + commit per span (what a durable add_span costs at least)")
    per_row = [*sqlite_cmd, "--batch", "1"]
    per_row[per_row.index("--n") + 1] = str(max(1, args.n // 10))  # a tenth of the rows: a commit each
    out["sqlite_per_row"] = run_json(per_row, args.timeout)
    echo_cmd = [sys.executable, str(HERE / "http_echo_anchor.py"), "--processes", str(args.processes), "--json"]
    if args.quick:
        echo_cmd += ["--requests", "20"]
    log("anchor: loopback HTTP echo")
    out["http_echo"] = run_json(echo_cmd, args.timeout)
    ab_cmd = [sys.executable, str(HERE / "client_transport_ab.py"), "--json"]
    ab_cmd += ["--reps", "1", "--rounds", "10"] if args.quick else ["--reps", str(args.reps)]
    log("A/B: the store client over our HTTP/1.1 client vs over httpx")
    out["client_transport"] = run_json(ab_cmd, args.timeout)
    return out


def run_import_time(args: argparse.Namespace, upstream_python: Optional[Path]) -> Dict[str, Any]:
    log("import agentlightning: fresh interpreters")
    cmd = [sys.executable, str(HERE / "import_time.py"), "--reps", str(args.import_reps), "--json"]
    if upstream_python:
        cmd += ["--upstream-python", str(upstream_python)]
    result = run_json(cmd, args.timeout * 2)
    if "speedup" in result:
        result["target"] = IMPORT_TARGET
        result["met"] = (result["speedup"].get("wall_s") or 0) >= IMPORT_TARGET
    return result


def run_tracing(args: argparse.Namespace) -> Dict[str, Any]:
    log("tracing: tracer overhead per LLM call, adapter throughput")
    cmd = [sys.executable, str(HERE / "tracing_bench.py"), "--json"]
    if args.quick:
        cmd += ["--calls", "40", "--block", "10", "--sizes", "10", "100", "--min-seconds", "0.1"]
    return run_json(cmd, args.timeout)


def run_trainer(args: argparse.Namespace) -> Dict[str, Any]:
    out = {}
    for store in ("memory", "sqlite"):
        log(f"trainer: trivial agent, {args.processes} runner processes, {store} store")
        cmd = [sys.executable, str(HERE / "trainer_throughput.py"), "--store", store, "--n", str(args.trainer_n)]
        out[store] = run_json([*cmd, "--runners", str(args.processes), "--json"], args.timeout)
    return out


def run_queries(args: argparse.Namespace) -> Dict[str, Any]:
    """Pages and status counts on a big store, pushed down vs the engine's Python path (``query_bench.py``)."""
    cmd = [sys.executable, str(HERE / "query_bench.py"), "--json"]
    if args.quick:
        cmd += ["--quick"]
    else:
        cmd += ["--rollouts", str(args.query_rollouts), "--spans", str(args.query_spans)]
    log(f"queries: {'small store' if args.quick else f'{args.query_rollouts:,} rollouts, {args.query_spans:,} spans'}")
    return run_json(cmd, args.timeout)


def meta(args: argparse.Namespace, upstream_python: Optional[Path]) -> Dict[str, Any]:
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, check=False, capture_output=True, text=True, cwd=ROOT)
    return {
        "time_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": commit.stdout.strip() or None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "upstream": UPSTREAM_SPEC if upstream_python else None,
        "upstream_python": str(upstream_python) if upstream_python else None,
    }


# ----------------------------------------------------------------------------------------------------------- main


def parse(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny N, 1 repetition (CI smoke test)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions of each workload case (default 3)")
    parser.add_argument("--n", type=int, default=None, help="rollouts per in-process run (default 2000)")
    parser.add_argument("--cs-n", type=int, default=None, help="client-server rollouts (default: --n, <= 600)")
    parser.add_argument("--spans", type=int, default=20, help="spans per rollout")
    parser.add_argument("--span-bytes", type=int, default=2048, help="approximate attribute bytes per span")
    parser.add_argument("--workers", type=int, default=4, help="workers of the in-process cases")
    parser.add_argument("--span-modes", nargs="+", choices=SPAN_MODES, default=list(SPAN_MODES), help="span modes")
    parser.add_argument("--processes", type=int, default=4, help="runner processes of the client-server cases")
    parser.add_argument("--scale", type=int, nargs="*", default=None, help="N values of the sweep (default 2000 20000)")
    parser.add_argument(
        "--scale-full", action="store_true", help="the sweep to 200,000 rollouts (2000 20000 200000; ~12 GB of SQLite)"
    )
    parser.add_argument("--memory-budget", type=int, default=256 * 2**20, help="span bytes the retention case keeps")
    parser.add_argument("--import-reps", type=int, default=None, help="fresh interpreters per variant (default 5)")
    parser.add_argument("--trainer-n", type=int, default=None, help="rollouts of the Trainer run (default 400)")
    parser.add_argument("--query-rollouts", type=int, default=100_000, help="rollouts of the query benchmark's store")
    parser.add_argument("--query-spans", type=int, default=2_000_000, help="spans of the query benchmark's store")
    parser.add_argument("--results", default=str(ROOT / "results"), help="directory for JSON, PNG and table")
    parser.add_argument("--skip-upstream", action="store_true", help="ours only (no upstream environment)")
    parser.add_argument("--upstream-python", default=None, help="python of an existing upstream v0.3 environment")
    parser.add_argument("--upstream-venv", default=str(ROOT / ".nox" / "bench-upstream-0.3.0"))
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        choices=("workload", "anchors", "import", "tracing", "trainer", "scale", "queries"),
        help="run only these sections",
    )
    parser.add_argument(
        "--workload-script", default=str(HERE / "store_workload.py"), help="our workload script (to compare versions)"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds any one benchmark process may take")
    args = parser.parse_args(argv)
    quick = args.quick
    args.reps = args.reps or (1 if quick else 3)
    args.n = args.n or (40 if quick else 2000)
    args.cs_n = args.cs_n or min(args.n, 600)  # upstream's client-server store runs ~13-27 rollouts/s
    default_scale = [2000, 20000, 200000] if args.scale_full else [2000, 20000]
    args.scale = args.scale if args.scale is not None else ([20, 80] if quick else default_scale)
    args.import_reps = args.import_reps or (1 if quick else 5)
    args.trainer_n = args.trainer_n or (20 if quick else 400)
    if quick:
        args.spans = min(args.spans, 5)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse(argv)
    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)
    sections = set(args.only or ("workload", "anchors", "import", "tracing", "trainer", "scale", "queries"))
    upstream_python: Optional[Path] = None
    errors: Dict[str, str] = {}
    if not args.skip_upstream and sections & {"workload", "import"}:
        try:
            upstream_python = Path(args.upstream_python) if args.upstream_python else None
            upstream_python = ensure_upstream(Path(args.upstream_venv)) if upstream_python is None else upstream_python
        except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
            errors["upstream"] = f"no upstream environment: {exc}"
            log(errors["upstream"])
    data: Dict[str, Any] = {
        "meta": meta(args, upstream_python),
        "params": {
            k: getattr(args, k)
            for k in ("quick", "reps", "n", "cs_n", "spans", "span_bytes", "workers", "processes", "scale")
            + ("span_modes",)
        },
    }
    with tempfile.TemporaryDirectory(prefix="agl-bench-") as tmp_name:
        tmp = Path(tmp_name)
        sections_run: Dict[str, Callable[[], Any]] = {
            "workload": lambda: run_workload(
                [Cases(args, upstream_python, tmp, mode) for mode in args.span_modes], args.reps, errors
            ),
            "anchors": lambda: run_anchors(args, tmp),
            "import": lambda: run_import_time(args, upstream_python),
            "tracing": lambda: run_tracing(args),
            "trainer": lambda: run_trainer(args),
            "scale": lambda: run_scale(args, tmp, errors),
            "queries": lambda: run_queries(args),
        }
        keys = {"import": "import_time"}
        for section, fn in sections_run.items():
            if section not in sections:
                continue
            try:
                data[keys.get(section, section)] = fn()
            except Exception as exc:  # noqa: BLE001 - one failing section must not lose the others
                errors[section] = str(exc)[-2000:]
                log(f"{section} failed: {str(exc)[-500:]}")
    if "workload" in data:
        data["ratios"] = ratios(data["workload"])
    data["errors"] = errors
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"bench-{stamp}.json", "latest.json"):
        (results_dir / name).write_text(json.dumps(data, indent=2))
    table = report.render(data)
    (results_dir / "latest.md").write_text(table)
    chart = report.chart(data, results_dir / f"bench-{stamp}.png")
    if chart:
        shutil.copyfile(chart, results_dir / "latest.png")
    print(table)
    log(f"results in {results_dir} ({'chart ' + str(chart) if chart else 'no chart: matplotlib not installed'})")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
