"""Where an SQLite store's time goes, statement by statement.

Runs the shared store workload (``store_workload.py``, in process, a fresh SQLite file) with the CPU time of every
SQL statement the store executes recorded (``time.thread_time_ns`` around each ``execute``/``executemany`` on the
store's connections, the checkpoint thread's included), then prints the workload's metrics and one row per statement:
calls, CPU microseconds per call, CPU milliseconds in all, and share of the process's CPU time over the whole run.
The Python between the statements is what remains of the process's CPU time.

    python tests/benchmarks/sqlite_statements.py --n 400 --span-mode runner
    python tests/benchmarks/sqlite_statements.py --n 400 --span-mode single --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import store_workload  # noqa: E402  (a sibling script)

SQL_LABEL = 60
"""Characters of a statement's text that name it in the table."""


def _instrument(totals: Dict[str, List[int]]) -> None:
    """Record the thread CPU time of every statement run on the store's connections into ``totals``."""
    from agentlightning_sqlite.backend import StoreConnection

    clock = time.thread_time_ns
    execute, executemany = StoreConnection.execute, StoreConnection.executemany

    def record(sql: str, spent: int) -> None:
        entry = totals.setdefault(" ".join(sql.split())[:SQL_LABEL], [0, 0])
        entry[0] += 1
        entry[1] += spent

    def timed_execute(self: Any, sql: str, *params: Any) -> Any:
        start = clock()
        try:
            return execute(self, sql, *params)
        finally:
            record(sql, clock() - start)

    def timed_executemany(self: Any, sql: str, rows: Any) -> Any:
        start = clock()
        try:
            return executemany(self, sql, rows)
        finally:
            record(sql, clock() - start)

    StoreConnection.execute = timed_execute  # type: ignore[method-assign,assignment]
    StoreConnection.executemany = timed_executemany  # type: ignore[method-assign,assignment]


def run(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="rollouts")
    parser.add_argument("--span-mode", choices=("many", "single", "runner"), default="runner")
    parser.add_argument("--top", type=int, default=15, help="statements shown")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)
    totals: Dict[str, List[int]] = {}
    _instrument(totals)
    with tempfile.TemporaryDirectory(prefix="agl-sqlite-statements-") as tmp:
        workload_args = store_workload.parse(
            ["--store", f"sqlite:///{tmp}/store.db", "--n", str(args.n), "--span-mode", args.span_mode]
        )
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu_before = usage.ru_utime + usage.ru_stime
        workload = store_workload.run(workload_args)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        process_cpu_ns = (usage.ru_utime + usage.ru_stime - cpu_before) * 1e9
    rows = sorted(totals.items(), key=lambda item: -item[1][1])
    statements_ns = sum(spent for _, spent in totals.values())
    return {
        "workload": {k: workload[k] for k in ("n", "span_mode", "seconds", "cpu_seconds", "rollouts_per_cpu_s")},
        "process_cpu_ms": round(process_cpu_ns / 1e6, 1),
        "statements_cpu_ms": round(statements_ns / 1e6, 1),
        "statements": [
            {
                "sql": sql,
                "calls": calls,
                "cpu_us_per_call": round(spent / calls / 1e3, 1),
                "cpu_ms": round(spent / 1e6, 1),
                "share_of_process_cpu": round(spent / process_cpu_ns, 3),
            }
            for sql, (calls, spent) in rows[: args.top]
        ],
        "json": args.json,
    }


def main(argv: Optional[List[str]] = None) -> int:
    result = run(argv)
    if result.pop("json"):
        print(json.dumps(result))
        return 0
    print(json.dumps(result["workload"]))
    process, statements = result["process_cpu_ms"], result["statements_cpu_ms"]
    print(f"process CPU {process} ms, of which statements {statements} ms ({statements / process:.0%})")
    print(f"{'calls':>8} {'us/call':>8} {'ms':>8} {'share':>6}  statement")
    for row in result["statements"]:
        print(
            f"{row['calls']:>8} {row['cpu_us_per_call']:>8} {row['cpu_ms']:>8} "
            f"{row['share_of_process_cpu']:>6.1%}  {row['sql']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
