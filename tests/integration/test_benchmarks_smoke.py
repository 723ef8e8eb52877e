"""The benchmark orchestrator (``nox -s bench``): its quick mode runs end to end, and its report logic holds.

The full quick run spawns many processes (servers, runners, fresh interpreters), so it is marked slow; the report
and ratio tests are plain functions over synthetic results.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import report  # noqa: E402
import run_all  # noqa: E402

CASE_KEYS = {"rollouts_per_s", "spans_per_s", "seconds", "cpu_seconds", "spans_queried", "peak_rss_mb", "n"}


def _run(rate: float, cpu_rate: float, n: int = 100) -> Dict[str, Any]:
    return {
        "n": n,
        "rollouts_per_s": rate,
        "spans_per_s": rate * 20,
        "rollouts_per_cpu_s": cpu_rate,
        "seconds": n / rate,
    }


def _workload(cases: Dict[str, List[Dict[str, Any]]]) -> Dict[str, Any]:
    return {name: {"runs": runs, "summary": run_all.summarize(runs)} for name, runs in cases.items()}


def test_summary_is_median_min_max() -> None:
    summary = run_all.summarize([_run(10, 1), _run(30, 3), _run(20, 2)])
    assert summary["rollouts_per_s"] == {"median": 20, "min": 10, "max": 30}
    assert "peak_rss_mb" not in summary  # absent metrics are left out, not zero


def test_ratios_are_ours_over_upstream_with_paired_range_and_target() -> None:
    workload = _workload(
        {
            "ours-memory/single": [_run(1000, 2000), _run(1200, 2400), _run(1100, 2200)],
            "upstream-memory/single": [_run(100, 400), _run(200, 400), _run(100, 400)],
            "ours-sqlite/single": [_run(250, 500)] * 3,
            "ours-memory/many": [_run(1000, 2000)],
            "upstream-memory/many": [_run(500, 1000)],
        }
    )
    out = run_all.ratios(workload)
    mem = out["memory_vs_upstream_memory/single"]
    assert (mem["ours"], mem["upstream"]) == ("ours-memory/single", "upstream-memory/single")
    assert mem["rollouts_per_s"] == 11.0 and mem["rollouts_per_cpu_s"] == 5.5
    assert mem["rollouts_per_s_range"] == [6.0, 11.0] and mem["met"] is True
    sql = out["sqlite_vs_upstream_memory/single"]
    assert sql["rollouts_per_s"] == 2.5 and sql["met"] is False  # target 3x
    assert "http_sqlite_vs_upstream_client_server/single" not in out  # neither side ran
    many = out["memory_vs_upstream_memory/many"]  # each mode against upstream's same mode
    assert many["rollouts_per_s"] == 2.0 and many["met"] is False
    assert "sqlite_vs_upstream_memory/many" not in out
    batched = out["memory_vs_upstream_memory/many-vs-single"]  # and our batched writes against upstream's single ones
    assert (batched["ours"], batched["upstream"]) == ("ours-memory/many", "upstream-memory/single")
    assert batched["rollouts_per_s"] == 10.0 and batched["met"] is True  # 1000 / median 100
    assert "memory_vs_upstream_memory/single-vs-many" not in out


def test_last_json_skips_noise_and_reads_indented_objects() -> None:
    assert run_all._last_json('warning: x\n{"a": 1}\n') == {"a": 1}
    assert run_all._last_json('noise {\n{\n  "a": {"b": 2}\n}\n') == {"a": {"b": 2}}
    with pytest.raises(RuntimeError, match="no JSON"):
        run_all._last_json("nothing here")


def test_report_renders_every_section_and_updates_docs_between_markers(tmp_path: Path) -> None:
    data: Dict[str, Any] = {
        "meta": {"time_utc": "t", "cpus": 2},
        "params": {"n": 100, "cs_n": 50, "spans": 20, "span_bytes": 2048, "reps": 3, "processes": 4},
        "workload": _workload({"ours-memory/single": [_run(1000, 2000)], "upstream-memory/single": [_run(100, 400)]}),
        "import_time": {
            "ours": {"wall_s": 0.2, "wall_s_min": 0.2, "wall_s_max": 0.3, "cpu_s": 0.1, "importtime_s": 0.1, "reps": 1},
            "speedup": {"wall_s": 25.0, "cpu_s": 30.0, "importtime_s": 40.0},
            "met": True,
        },
        "scale": [
            {
                "case": "ours-sqlite",
                "n": 2000,
                "seconds": 2.0,
                "rollouts_per_s": 1000.0,
                "ms_per_rollout": 1.0,
                "cpu_ms_per_rollout": 0.5,
                "peak_rss_mb": 40.0,
                "evicted_rollouts": 0,
                "file_mb": 12.0,
            },
        ],  # fmt: skip
        "errors": {"tracing": "boom"},
    }
    data["ratios"] = run_all.ratios(data["workload"])
    text = report.render(data)
    assert "ours: memory store, in process, `single` spans" in text and "1,000.0" in text
    assert "ours-memory (single) / upstream-memory (single)" in text and "10.0x" in text
    assert "25.0x (wall)" in text and "### Scale" in text and "`tracing`: boom" in text
    doc = tmp_path / "performance.md"
    doc.write_text(f"# Perf\n\nintro\n\n{report.BEGIN}\nold table\n{report.END}\n\nmethod\n")
    report.update_docs(doc, text)
    updated = doc.read_text()
    assert "old table" not in updated and "intro" in updated and updated.endswith(f"{report.END}\n\nmethod\n")
    assert "ours: memory store" in updated
    (tmp_path / "bad.md").write_text("no markers")
    with pytest.raises(SystemExit, match="markers"):
        report.update_docs(tmp_path / "bad.md", text)


@pytest.mark.slow
def test_quick_run_without_upstream_writes_the_expected_json(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--quick", "--skip-upstream", "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    assert {"meta", "params", "workload", "ratios", "anchors", "import_time", "tracing", "trainer", "scale"} <= set(
        data
    )
    assert data["errors"] == {} and data["params"]["quick"] is True and data["meta"]["upstream"] is None
    cases = {"ours-memory", "ours-sqlite", "ours-http-sqlite"}
    if _postgres_at_hand():  # the bench adds 1 and 2 store servers over a throw-away PostgreSQL cluster
        cases |= {"ours-http-postgres-1", "ours-http-postgres-2"}
    assert set(data["workload"]) == {f"{case}/{mode}" for case in cases for mode in ("single", "many", "runner")}
    for name, entry in data["workload"].items():
        (run,) = entry["runs"]
        assert CASE_KEYS <= set(run), name
        assert run["spans_queried"] == run["n"] * data["params"]["spans"], name
        assert entry["summary"]["rollouts_per_s"]["median"] > 0
    assert data["ratios"] == {}  # nothing to compare without upstream
    assert {"sqlite", "http_echo"} <= set(data["anchors"])
    assert data["import_time"]["ours"]["wall_s"] > 0 and "upstream" not in data["import_time"]
    assert {"overhead", "adapter"} <= set(data["tracing"])
    assert {"memory", "sqlite"} == set(data["trainer"])
    assert [(r["case"], r["n"]) for r in data["scale"]] == [
        (case, n) for n in (20, 80) for case in ("ours-memory-retention", "ours-sqlite", "ours-http-sqlite")
    ]
    table = (tmp_path / "latest.md").read_text()
    assert "### Store workload" in table and "### Scale" in table


def test_merge_keeps_the_workload_params_and_accumulates_errors() -> None:
    a = {"meta": {"time_utc": "a"}, "params": {"n": 2000}, "workload": {}, "errors": {"x": "1"}}
    b = {"meta": {"time_utc": "b"}, "params": {"n": 40}, "scale": [1], "errors": {"y": "2"}}
    merged = report.merge([a, b])
    assert merged["params"] == {"n": 2000} and merged["scale"] == [1] and merged["workload"] == {}
    assert merged["errors"] == {"x": "1", "y": "2"}
    assert merged["meta"]["time_utc"] == "a" and [p["time_utc"] for p in merged["meta"]["parts"]] == ["a", "b"]


def test_sqlite_statement_profile_counts_every_span_write() -> None:
    script = str(BENCH / "sqlite_statements.py")
    proc = subprocess.run(
        [sys.executable, script, "--n", "6", "--span-mode", "single", "--top", "1000", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["workload"]["n"] == 6 and result["workload"]["span_mode"] == "single"
    calls = {row["sql"]: row["calls"] for row in result["statements"]}
    span_inserts = [n for sql, n in calls.items() if sql.startswith("INSERT OR IGNORE INTO spans")]
    assert span_inserts == [6 * 20]  # one insert per add_span
    # each add_span is committed before it returns, alone or with the writes the other 3 workers issued in its turn
    assert calls["COMMIT"] >= 6 * 20 // 4
    assert 0 < result["statements_cpu_ms"] <= result["process_cpu_ms"]
    assert all(0 <= row["share_of_process_cpu"] <= 1 for row in result["statements"])


def test_server_http_layer_benchmark_serves_every_request_of_the_pattern() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "server_http_layer.py"), "3"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "us of CPU per request (69 requests)" in proc.stdout


def test_a_store_servers_cpu_is_counted_once_it_answered_a_store_call(tmp_path: Path) -> None:
    """The bench's store server is ready when constructed (its store open and answering), and the CPU it spent
    opening the store after announcing its socket is kept apart from the runs' figures."""
    import urllib.request

    server = run_all.OurServer(f"sqlite:///{tmp_path}/ready.db")
    try:
        assert server.startup_cpu is not None and server.startup_cpu >= 0.0
        before = server.usage()["cpu"]
        with urllib.request.urlopen(f"{server.url}/v1/agl/statistics", timeout=10) as answer:
            assert answer.status == 200
        assert before is not None
    finally:
        server.stop()


def _postgres_at_hand() -> bool:
    """Whether the PostgreSQL store and the server binaries its tests start are both installed."""
    import importlib.util

    if importlib.util.find_spec("agentlightning_postgres") is None:
        return False
    # the plugin's tests' cluster helper, as the bench uses it (loaded from its file: other conftests share its name)
    path = BENCH.parent.parent / "plugins" / "postgres" / "tests" / "conftest.py"
    spec = importlib.util.spec_from_file_location("agl_postgres_test_cluster", path)
    assert spec is not None and spec.loader is not None
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    return helper.find_bindir() is not None


@pytest.mark.parametrize("group", [1, 3])
def test_sqlite_anchor_writes_the_stores_own_span_rows(group: int) -> None:
    """``sqlite_anchor.py --store-rows``: every span row and counters row of the store's schema is written (the script
    checks the stored counts), in one commit per ``group`` span writes."""
    out = subprocess.run(
        [sys.executable, str(BENCH / "sqlite_anchor.py"), "--store-rows", "--n", "5", "--spans", "4"]
        + ["--group", str(group), "--span-bytes", "256", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rows"] == 20 and result["group"] == group
    assert result["commits"] == -(-20 // group)
    assert result["rollouts_per_cpu_s"] > 0


def test_the_paper_estimate_takes_the_smallest_bound_and_the_write_lock_with_a_network() -> None:
    import postgres_servers

    measured = {"server_cpu_ms_per_rollout": 4.0, "db_cpu_ms_per_rollout": 2.0, "client_cpu_ms_per_rollout": 1.0}
    local = postgres_servers.estimate(measured, servers=1, runner_machines=1)
    assert "write_lock" not in local
    assert local["rollouts_per_s"] == local["servers"] == 250.0
    assert postgres_servers.estimate(measured, servers=4, runner_machines=1)["rollouts_per_s"] == 500.0  # database
    far = postgres_servers.estimate(measured, servers=4, runner_machines=4, rtt_ms=0.5)
    locked = postgres_servers.LOCKED_ROUND_TRIPS_PER_ROLLOUT
    assert far["write_lock"] == pytest.approx(1000.0 / (locked * 0.5))
    assert far["rollouts_per_s"] == min(far["servers"], far["database"], far["runners"], far["write_lock"])
