"""Workload cases of ``run_all.py`` over PostgreSQL: the store workload through 1 and 2 store servers
(``agl store serve --store postgresql://...``, each its own process) sharing one throw-away PostgreSQL cluster.

The cluster (Debian's PostgreSQL binaries, as the plugin's tests make it: ``plugins/postgres/tests/conftest.py``) is
started on first use and removed at exit; each run gets a schema of its own. The runner processes get every server's
URL (one comma-separated store URL) and spread their requests over them. Besides the workload's own figures, each
result carries the CPU the store servers and the database spent per rollout (``server_cpu_ms_per_rollout``,
``db_cpu_ms_per_rollout``), from which :func:`estimate` works out what N servers and M runner machines would reach.

Without the PostgreSQL binaries (or ``agentlightning-postgres``) the cases are left out, with a log line.

``python tests/benchmarks/postgres_servers.py --ab REV`` measures a change of the plugin: rounds of both cases with
the plugin's code of git revision ``REV`` (put first on the servers' ``PYTHONPATH``) and with the checkout's,
alternating which goes first, and, with ``--upstream-python``, upstream's client-server store in each round (ratios
within the round); it prints one JSON line per run and the medians.
"""

from __future__ import annotations

import atexit
import itertools
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

SERVER_COUNTS = (1, 2)
TARGETS = {
    "http_postgres_1_vs_upstream_client_server": ("ours-http-postgres-1", "upstream-client-server", 10.0),
    "http_postgres_2_vs_upstream_client_server": ("ours-http-postgres-2", "upstream-client-server", 10.0),
}
"""Ratio targets of ``run_all.py`` (rollouts/s against upstream's client-server store)."""

_cluster: Any = None
_schemas = itertools.count(1)


def _start_cluster() -> Any:
    """The bench's PostgreSQL cluster (started once), or None without the binaries."""
    global _cluster
    if _cluster is None:
        sys.path.insert(0, str(ROOT / "plugins" / "postgres" / "tests"))
        from conftest import Cluster, find_bindir  # the plugin's tests' cluster helper

        bindir = find_bindir()
        if bindir is None:
            _cluster = False
            return None
        cluster = Cluster(bindir, Path(tempfile.mkdtemp(prefix="agl-bench-pg-")))
        cluster.start()
        atexit.register(cluster.remove)
        _cluster = cluster
    return _cluster or None


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its living children (the postmaster and its backends)."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total


def _postmaster_pid(cluster: Any) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def cases(owner: Any, server_class: Any) -> Dict[str, Callable[[], Dict[str, Any]]]:
    """``ours-http-postgres-<N>`` for N in :data:`SERVER_COUNTS`, run by ``owner`` (a ``run_all.Cases``) with
    ``server_class`` (``run_all.OurServer``); empty without PostgreSQL."""
    try:
        import agentlightning_postgres  # noqa: F401
    except ImportError:
        return {}
    try:
        cluster = _start_cluster()
    except Exception as exc:  # noqa: BLE001 - the other cases run anyway
        print(f"[bench] no PostgreSQL cluster: {exc}", file=sys.stderr)
        return {}
    if cluster is None:
        print("[bench] PostgreSQL binaries not found: the postgres cases are left out", file=sys.stderr)
        return {}

    def make(count: int) -> Callable[[], Dict[str, Any]]:
        return lambda: _run(owner, server_class, cluster, count)

    return {f"ours-http-postgres-{n}": make(n) for n in SERVER_COUNTS}


def _run(owner: Any, server_class: Any, cluster: Any, count: int) -> Dict[str, Any]:
    a = owner.args
    url = f"{cluster.url}?schema=bench{next(_schemas)}&pool_max=8"
    servers: List[Any] = []
    try:
        for _ in range(count):
            servers.append(server_class(url))
        db_before = _tree_cpu(_postmaster_pid(cluster))
        before = [s.usage() for s in servers]
        result = owner._ours(",".join(s.url for s in servers), a.cs_n, a.processes, ["--processes", str(a.processes)])
        after = [s.usage() for s in servers]
        db_cpu = _tree_cpu(_postmaster_pid(cluster)) - db_before
    finally:
        for server in servers:
            server.stop()
    server_cpu = sum(
        (x["cpu"] or 0.0) - (b["cpu"] or 0.0)
        for b, x in zip(before, after)  # type: ignore[operator]
    )
    n = result["n"]
    result["servers"] = count
    result["server_cpu_seconds"] = round(server_cpu, 3)
    result["server_startup_cpu_seconds"] = round(sum(s.startup_cpu or 0.0 for s in servers), 3)
    result["db_cpu_seconds"] = round(db_cpu, 3)
    result["client_cpu_ms_per_rollout"] = round(1000 * result["cpu_seconds"] / n, 3)  # runners and algorithm
    result["server_cpu_ms_per_rollout"] = round(1000 * server_cpu / n, 3)
    result["db_cpu_ms_per_rollout"] = round(1000 * db_cpu / n, 3)
    result["cpu_seconds"] = round(result["cpu_seconds"] + server_cpu + db_cpu, 3)
    result["rollouts_per_cpu_s"] = round(n / result["cpu_seconds"], 1)
    result["store_peak_rss_mb"] = max((x["peak_mb"] or 0.0) for x in after)
    return result


LOCKED_ROUND_TRIPS_PER_ROLLOUT = 7
"""Round trips a rollout's three writes through a store server (claim, span batch, finish: 4, 3 and 3 round trips,
counted by ``test_a_rollout_costs_few_round_trips``) spend holding the schema's write lock: each holds it from its
first round trip, which takes it, until its last, which commits."""


def estimate(
    result: Dict[str, Any],
    servers: int,
    runner_machines: int,
    *,
    cores_per_server: int = 1,
    cores_per_machine: int = 2,
    db_cores: int = 1,
    rtt_ms: float = 0.0,
) -> Dict[str, float]:
    """A paper estimate of the rollouts/s of ``servers`` store servers and ``runner_machines`` runner machines, from
    the CPU one measured run spent per rollout: in the store servers (spread over ``servers`` processes of
    ``cores_per_server`` cores), in the database (its writes are serialized per schema: ``db_cores`` is 1 unless
    several runs share it), and in the runner and algorithm processes (``cores_per_machine`` cores each); with a
    network round trip of ``rtt_ms`` between the servers and the database, also the schema's write lock, held for
    :data:`LOCKED_ROUND_TRIPS_PER_ROLLOUT` round trips per rollout. The smallest bound is the estimate; the agents'
    own work is left out."""
    limits = {
        "servers": servers * cores_per_server * 1000.0 / result["server_cpu_ms_per_rollout"],
        "database": db_cores * 1000.0 / result["db_cpu_ms_per_rollout"],
        "runners": runner_machines * cores_per_machine * 1000.0 / result["client_cpu_ms_per_rollout"],
    }
    if rtt_ms > 0:
        limits["write_lock"] = 1000.0 / (LOCKED_ROUND_TRIPS_PER_ROLLOUT * rtt_ms)
    limits["rollouts_per_s"] = min(limits.values())
    return limits


_AB_KEYS = (
    "rollouts_per_s",
    "rollouts_per_cpu_s",
    "server_cpu_ms_per_rollout",
    "db_cpu_ms_per_rollout",
    "client_cpu_ms_per_rollout",
)


def _plugin_at(rev: str) -> str:
    """A folder holding ``agentlightning_postgres`` as of git revision ``rev`` (for ``PYTHONPATH``)."""
    import io
    import shutil
    import subprocess
    import tarfile

    folder = Path(tempfile.mkdtemp(prefix="agl-bench-pg-code-"))
    atexit.register(shutil.rmtree, folder, True)
    src = "plugins/postgres/src"
    git = shutil.which("git") or "git"
    archive = subprocess.run([git, "archive", rev, src], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return str(folder / src)


def ab(before: str, n: int, reps: int, upstream_python: Optional[str]) -> List[Dict[str, Any]]:
    """Alternating rounds of the 1- and 2-server cases with the plugin of revision ``before`` and with the
    checkout's (and upstream's client-server store once per round); one metrics dict per run, printed as it ends."""
    import json
    import os

    import run_all  # a sibling script

    args = run_all.parse(["--only", "workload", "--span-modes", "many", "--cs-n", str(n), "--skip-upstream"])
    upstream = Path(upstream_python) if upstream_python else None
    owner = run_all.Cases(args, upstream, Path(tempfile.mkdtemp(prefix="agl-bench-ab-")), "many")
    table = cases(owner, run_all.OurServer)
    if not table:
        raise SystemExit("no PostgreSQL: nothing to measure")
    variants = [("before", _plugin_at(before)), ("after", "")]
    runs: List[Dict[str, Any]] = []
    for rep in range(reps):
        plan: List[Any] = [
            (name, path, count) for name, path in variants[:: 1 if rep % 2 == 0 else -1] for count in SERVER_COUNTS
        ]
        if upstream is not None:
            plan.insert(len(SERVER_COUNTS), ("upstream", None, 0))
        for name, path, count in plan:
            load = os.getloadavg()[0]
            if name == "upstream":
                os.environ.pop("PYTHONPATH", None)
                result = owner.upstream_client_server()
            else:
                os.environ["PYTHONPATH"] = path
                result = table[f"ours-http-postgres-{count}"]()
            row = {
                "rep": rep,
                "variant": name,
                "servers": count,
                "load": [round(load, 2), round(os.getloadavg()[0], 2)],
            }
            row.update({key: result.get(key) for key in (*_AB_KEYS, "server_startup_cpu_seconds")})
            print(json.dumps(row), flush=True)
            runs.append(row)
    os.environ.pop("PYTHONPATH", None)
    return runs


def ab_summary(runs: List[Dict[str, Any]]) -> List[str]:
    """Medians per variant and server count, with the ratios to upstream's run of the same round."""
    import statistics

    upstream = {r["rep"]: r for r in runs if r["variant"] == "upstream"}
    lines = []
    for count in SERVER_COUNTS:
        for variant in ("before", "after"):
            mine = [r for r in runs if r["servers"] == count and r["variant"] == variant]
            if not mine:
                continue
            med = {key: statistics.median(r[key] for r in mine) for key in _AB_KEYS}
            line = (
                f"{count} server(s), {variant}: {med['rollouts_per_s']:.1f} rollouts/s, "
                f"{med['rollouts_per_cpu_s']:.1f} per CPU-s, CPU ms per rollout: servers "
                f"{med['server_cpu_ms_per_rollout']:.2f} / database {med['db_cpu_ms_per_rollout']:.2f} / runners "
                f"{med['client_cpu_ms_per_rollout']:.2f}"
            )
            if upstream:
                ratios = sorted(r["rollouts_per_s"] / upstream[r["rep"]]["rollouts_per_s"] for r in mine)
                line += f"; {statistics.median(ratios):.1f}x upstream ({ratios[0]:.1f}-{ratios[-1]:.1f})"
            lines.append(line)
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    """Print :func:`estimate` for a result JSON (``run_all.py``'s ``latest.json``) over a grid of N and M, or run
    an A/B measurement (``--ab REV``)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description="paper estimate of N store servers x M runner machines")
    parser.add_argument("results", nargs="?", help="run_all.py's JSON (latest.json)")
    parser.add_argument("--case", default="ours-http-postgres-1/many")
    parser.add_argument("--ab", metavar="REV", help="measure the checkout's plugin against the one of git revision REV")
    parser.add_argument("--n", type=int, default=300, help="rollouts per run (--ab)")
    parser.add_argument("--reps", type=int, default=4, help="rounds (--ab)")
    parser.add_argument("--upstream-python", default=None, help="python of an upstream v0.3 environment (--ab)")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="network round trip, servers to database (ms)")
    args = parser.parse_args(argv)
    if args.ab:
        for line in ab_summary(ab(args.ab, args.n, args.reps, args.upstream_python)):
            print(line)
        return 0
    if not args.results:
        parser.error("give run_all.py's JSON, or --ab REV")
    data = json.loads(Path(args.results).read_text())
    runs = data["workload"][args.case]["runs"]
    best = max(runs, key=lambda r: r["rollouts_per_s"])
    print(
        f"from {args.case}: CPU per rollout: servers {best['server_cpu_ms_per_rollout']} ms, database "
        f"{best['db_cpu_ms_per_rollout']} ms, runners and algorithm {best['client_cpu_ms_per_rollout']} ms"
    )
    print("N servers x M machines -> rollouts/s (bound)")
    for servers in (1, 2, 4, 8):
        row = []
        for machines in (1, 2, 4, 8, 16):
            limits = estimate(best, servers, machines, rtt_ms=args.rtt_ms)
            bound = min((k for k in limits if k != "rollouts_per_s"), key=lambda k: limits[k])
            row.append(f"{limits['rollouts_per_s']:7.0f} ({bound[0]})")
        print(f"N={servers}: " + "  ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
