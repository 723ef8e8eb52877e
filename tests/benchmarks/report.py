"""Render a ``run_all.py`` result (JSON) as markdown tables and a PNG chart; optionally update docs/performance.md.

    python tests/benchmarks/report.py results/latest.json                       # print the tables
    python tests/benchmarks/report.py results/latest.json --docs docs/performance.md --chart results/latest.png
    python tests/benchmarks/report.py a/latest.json b/latest.json      # sections of runs made with --only, merged

``--docs`` replaces what lies between the ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` markers of the file.
The chart needs matplotlib (installed in the bench session only); without it the chart is skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

CASE_LABELS = {
    "ours-memory": "ours: memory store, in process",
    "upstream-memory": "upstream v0.3: InMemoryLightningStore, in process",
    "ours-sqlite": "ours: SQLite store, in process",
    "ours-http-sqlite": "ours: HTTP server over SQLite, {p} runner processes",
    "upstream-client-server": "upstream v0.3: LightningStoreServer/Client (in-memory), {p} runner processes",
    "ours-http-postgres-1": "ours: 1 HTTP server over PostgreSQL, {p} runner processes",
    "ours-http-postgres-2": "ours: 2 HTTP servers over one PostgreSQL, {p} runner processes",
}


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) < 10 and digits:
        return f"{value:.{max(digits, 2)}f}"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _spread(stat: Optional[Dict[str, float]], digits: int = 1) -> str:
    if not stat:
        return "-"
    if stat["min"] == stat["max"]:
        return _num(stat["median"], digits)
    return f"{_num(stat['median'], digits)} ({_num(stat['min'], digits)}-{_num(stat['max'], digits)})"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _workload(data: Dict[str, Any]) -> List[str]:
    p = data["params"]
    lines = [
        f"### Store workload: N={p['n']:,} rollouts (client-server cases N={p['cs_n']:,}) x {p['spans']} spans of "
        f"~{p['span_bytes']:,} B; median (min-max) of {p['reps']} alternating repetitions. `single` spans: one "
        "`add_span` call per span (as a tracer writes them); `many`: one `add_many_spans` call per rollout; `runner`: "
        "upstream's runner pattern (`get_latest_resources`, one `add_otel_span` per OpenTelemetry span, the algorithm "
        "polling `wait_for_rollouts(timeout=0)` and reading each finished rollout's spans).",
        "",
    ]
    rows = []
    for name, entry in data["workload"].items():
        s = entry.get("summary") or {}
        case, _, mode = name.partition("/")
        label = CASE_LABELS.get(case, case).format(p=p["processes"]) + (f", `{mode}` spans" if mode else "")
        rows.append(
            [
                label,
                _spread(s.get("rollouts_per_s")),
                _spread(s.get("spans_per_s"), 0),
                _spread(s.get("rollouts_per_cpu_s")),
                _spread(s.get("store_peak_rss_mb")),
                str(len(entry.get("runs", []))),
            ]
        )
    header = ["case", "rollouts/s", "spans/s", "rollouts per CPU-s", "peak RSS MB of the store's process", "runs"]
    return lines + _table(header, rows)


def _ratios(data: Dict[str, Any]) -> List[str]:
    rows = []
    for entry in data.get("ratios", {}).values():
        rng = entry.get("rollouts_per_s_range")
        rows.append(
            [
                f"{entry['ours']} / {entry['upstream']}".replace("/single", " (single)")
                .replace("/many", " (many)")
                .replace("/runner", " (runner)"),
                f">= {entry['target']:g}x",
                f"{entry.get('rollouts_per_s', '-')}x" + (f" ({rng[0]}-{rng[1]})" if rng else ""),
                f"{entry.get('rollouts_per_cpu_s', '-')}x",
                "yes" if entry.get("met") else "**no**",
            ]
        )
    imp = data.get("import_time") or {}
    if "speedup" in imp:
        rows.append(
            [
                "`import agentlightning` upstream / ours (time)",
                f">= {imp.get('target', 20):g}x",
                f"{imp['speedup']['wall_s']}x (wall)",
                f"{imp['speedup']['cpu_s']}x (CPU)",
                "yes" if imp.get("met") else "**no**",
            ]
        )
    if not rows:
        return []
    header = ["ratio (same run)", "target", "ratio of medians, wall (per-rep range)", "ratio, per CPU-s", "met"]
    return ["### Ours / upstream v0.3", ""] + _table(header, rows)


def _import(data: Dict[str, Any]) -> List[str]:
    imp = data.get("import_time")
    if not imp:
        return []
    rows = []
    for name in ("ours", "upstream", "ours-bare", "upstream-bare"):
        if name in imp:
            r = imp[name]
            rows.append(
                [
                    name,
                    f"{r['wall_s']:.3f} ({r['wall_s_min']:.3f}-{r['wall_s_max']:.3f})",
                    f"{r['cpu_s']:.3f}",
                    f"{r['importtime_s']:.3f}",
                    str(r["reps"]),
                ]
            )
    header = ["interpreter", "wall s, median (min-max)", "CPU s", "-X importtime s", "runs"]
    return ["### `import agentlightning` (fresh interpreters)", ""] + _table(header, rows)


def _anchors(data: Dict[str, Any]) -> List[str]:
    anchors = data.get("anchors")
    if not anchors:
        return []
    rows = []
    for sq in (anchors.get("sqlite"), anchors.get("sqlite_per_row")):
        if not sq:
            continue
        rows.append(
            [
                f"stdlib sqlite3: {sq['rows']:,} span rows, batches of {sq['batch']}, WAL, "
                f"synchronous={sq['synchronous']}",
                f"{sq['rows_per_s_write']:,} rows/s written = {sq['rollouts_per_s_write']:,} rollouts/s; "
                f"{sq['rows_per_s_read']:,} rows/s read back",
            ]
        )
    echo = anchors.get("http_echo")
    if echo:
        summary = ", ".join(
            f"{k}={_num(v) if isinstance(v, float) else v}"
            for k, v in echo.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        )
        rows.append(["loopback HTTP echo (uvicorn + starlette, httpx clients)", summary])
    ab = anchors.get("client_transport")
    if ab:
        rows.append(
            [
                "store client A/B: our HTTP/1.1 client vs httpx (same server, same request mix)",
                ", ".join(
                    f"{t}: {_num(ab[t]['requests_per_s'])} req/s, {_num(ab[t]['total_cpu_us_per_request'])} CPU us/req"
                    for t in ("http11", "httpx")
                )
                + f"; http11/httpx requests/s = {ab['speedup_requests_per_s']}",
            ]
        )
    return ["### Anchors (same machine, no store code)", ""] + _table(["anchor", "result"], rows)


def _tracing(data: Dict[str, Any]) -> List[str]:
    tr = data.get("tracing")
    if not tr:
        return []
    rows = []
    for key in ("overhead", "overhead_stream"):
        o = tr.get(key)
        if o:
            rows.append(
                [
                    f"tracer overhead per LLM call ({'streaming' if key.endswith('stream') else 'plain'})",
                    f"{o['overhead_ms']:.3f} ms ({o['overhead_pct']:.1f}% of a {o['bare_ms']:.2f} ms local call)",
                ]
            )
    for row in tr.get("adapter", []):
        rows.append(
            [
                f"adapter TracerTraceToTriplet, {row['spans']:,} spans",
                f"{row['ms_per_trace']:.2f} ms/trace, {row['spans_per_s']:,.0f} spans/s",
            ]
        )
    return ["### Tracing", ""] + _table(["measure", "result"], rows)


def _trainer(data: Dict[str, Any]) -> List[str]:
    tr = data.get("trainer")
    if not tr:
        return []
    rows = [
        [
            f"{r['store']} store, {r['runners']} runner processes, {r['n']:,} rollouts",
            f"{r['rollouts_per_s']:.1f}",
            _num(r.get("steady_rollouts_per_s")),
        ]
        for r in tr.values()
    ]
    header = ["Trainer.fit, trivial agent", "rollouts/s (whole fit)", "rollouts/s (steady window)"]
    return ["### End-to-end Trainer throughput", ""] + _table(header, rows)


def _scale(data: Dict[str, Any]) -> List[str]:
    rows_in = data.get("scale")
    if not rows_in:
        return []
    rows = [
        [
            r["case"],
            f"{r['n']:,}",
            _num(r["rollouts_per_s"]),
            f"{r['ms_per_rollout']:.3f}",
            f"{r['cpu_ms_per_rollout']:.3f}",
            _num(r["peak_rss_mb"]),
            _num(r.get("evicted_rollouts"), 0) if r.get("evicted_rollouts") is not None else "-",
            _num(r.get("file_mb")),
        ]
        for r in rows_in
    ]
    header = ["case", "N", "rollouts/s", "ms/rollout", "CPU ms/rollout", "peak RSS MB", "evicted", "file MB"]
    return ["### Scale (ours, one run per N)", ""] + _table(header, rows)


def _queries(data: Dict[str, Any]) -> List[str]:
    q = data.get("queries")
    if not q:
        return []
    rows = []
    for backend in ("sqlite", "memory"):
        for name, r in q.get(backend, {}).items():
            if not name.startswith("_"):
                same = "" if r["same_answer"] else " (answers differ!)"
                rows.append(
                    [
                        f"{backend}: {name}{same}",
                        _num(r["pushed_p95_ms"]),
                        _num(r["pushed_cpu_p95_ms"]),
                        _num(r["python_p95_ms"]),
                        _num(r["python_cpu_p50_ms"]),
                    ]
                )
    title = f"### Queries ({q['rollouts']:,} rollouts, {q['spans']:,} spans; target p95 < {q['target_p95_ms']} ms)"
    header = ["query", "pushed down p95 ms", "(CPU p95 ms)", "Python path p95 ms", "(CPU p50 ms)"]
    return [title, ""] + _table(header, rows)


def render(data: Dict[str, Any]) -> str:
    m = data.get("meta", {})
    out = [
        f"Run {m.get('time_utc')} on {m.get('platform')}, {m.get('cpus')} CPUs, Python {m.get('python')}, "
        f"commit {m.get('git_commit')}, load average at start {m.get('load_average')}; "
        f"upstream: {m.get('upstream') or 'skipped'}.",
        "",
    ]
    for part in (_ratios, _workload, _anchors, _import, _tracing, _trainer, _scale, _queries):
        if part is _workload and "workload" not in data:
            continue
        lines = part(data)
        if lines:
            out += lines + [""]
    if data.get("errors"):
        out += ["### Errors", ""] + [f"- `{k}`: {v[:300]}" for k, v in data["errors"].items()] + [""]
    return "\n".join(out)


def chart(data: Dict[str, Any], path: Path) -> Optional[Path]:
    """A bar chart of median rollouts/s per workload case (log scale, min-max whiskers); None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names, medians, lows, highs, colors = [], [], [], [], []
    for name, entry in data.get("workload", {}).items():
        stat = (entry.get("summary") or {}).get("rollouts_per_s")
        if not stat:
            continue
        names.append(name)
        medians.append(stat["median"])
        lows.append(stat["median"] - stat["min"])
        highs.append(stat["max"] - stat["median"])
        colors.append("tab:blue" if name.startswith("ours") else "tab:gray")
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 0.9), 4.5))
    ax.bar(names, medians, yerr=[lows, highs], color=colors, capsize=4)
    ax.set_yscale("log")
    ax.set_ylabel("rollouts/s (median, min-max)")
    p = data["params"]
    ax.set_title(f"Store workload: {p['spans']} spans/rollout, {p['reps']} reps (blue: ours, gray: upstream v0.3)")
    for i, value in enumerate(medians):
        ax.annotate(f"{value:,.0f}", (i + 0.3, value), ha="left", va="bottom", fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=15, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def update_docs(doc: Path, text: str) -> None:
    content = doc.read_text()
    if BEGIN not in content or END not in content:
        raise SystemExit(f"{doc} has no {BEGIN} ... {END} markers")
    head, rest = content.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{text.rstrip()}\n{END}{tail}")


def merge(parts: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """One result from several (runs of different ``--only`` sections): later sections win, errors accumulate."""
    merged: Dict[str, Any] = {"errors": {}}
    for part in parts:
        for key, value in part.items():
            if key == "errors":
                merged["errors"].update(value)
            elif key == "meta" and "meta" in merged:
                merged["meta"].setdefault("parts", [dict(merged["meta"])]).append(value)
            elif key != "params" or "params" not in merged or "workload" in part:
                merged[key] = value
    return merged


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", nargs="+", help="run_all.py JSON files (several: merged, later sections win)")
    parser.add_argument("--docs", default=None, help="markdown file whose bench markers receive the tables")
    parser.add_argument("--chart", default=None, help="write the PNG chart here")
    parser.add_argument("--out", default=None, help="write the (merged) result JSON here")
    args = parser.parse_args(argv)
    data = merge([json.loads(Path(path).read_text()) for path in args.result])
    text = render(data)
    print(text)
    if args.out:
        Path(args.out).write_text(json.dumps(data, indent=2))
    if args.docs:
        update_docs(Path(args.docs), text)
    if args.chart and chart(data, Path(args.chart)) is None:
        print("no chart: matplotlib is not installed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
