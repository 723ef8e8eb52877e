"""Anchor for the SQLite store's throughput: what bare stdlib ``sqlite3`` does with the shared workload's rows.

Inserts N x S span-sized JSON rows (the shape the store writes: a few indexed columns plus a JSON ``data`` column)
in batches, one committed transaction per batch, WAL journal, and reads them back per rollout. No store code is
involved, so the figures bound what the store can reach on this machine.

    python tests/benchmarks/sqlite_anchor.py                      # N=2000, S=20, batches of 100, NORMAL
    python tests/benchmarks/sqlite_anchor.py --batch 20 --synchronous FULL --page-size 8192 --json

``--store-rows`` writes instead exactly what the SQLite store writes for each span of the shared workload: a file
created by the store (same schema, indexes and triggers, schema v5), the store's span JSON (encoded before the clock
starts), and per span write the store's statements (``BEGIN IMMEDIATE``, ``PRAGMA data_version``, the span insert,
the ``span_counters`` upsert with the heartbeat, ``COMMIT``), K rollouts written in turn as K workers interleave
them. ``--group G`` commits G span writes together, as the store's group commit does (no savepoint per write); the
store's background checkpoint is done inline every 256 commits. Only ``sqlite3`` runs in the measured window, which
is timed in CPU seconds too: the floor of a durable span write with no store code around the statements.

    python tests/benchmarks/sqlite_anchor.py --store-rows --n 400 --group 1
    python tests/benchmarks/sqlite_anchor.py --store-rows --n 400 --group 4 --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # runner_pattern, a sibling script


def _row(rollout_id: str, attempt_id: str, seq: int, span_bytes: int) -> tuple:  # type: ignore[type-arg]
    payload = {
        "rollout_id": rollout_id,
        "attempt_id": attempt_id,
        "sequence_id": seq,
        "span_id": uuid.uuid4().hex[:16],
        "name": "llm.call",
        "attributes": {"gen_ai.usage.prompt_tokens": 512, "payload": "x" * max(1, span_bytes - 160)},
    }
    data = json.dumps(payload, separators=(",", ":"))
    return (rollout_id, attempt_id, payload["span_id"], seq, len(data), data)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    directory = tempfile.mkdtemp(prefix="sqlite-anchor-", dir=args.dir)
    path = os.path.join(directory, "anchor.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA page_size = {args.page_size}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {args.synchronous}")
    conn.execute(
        "CREATE TABLE spans (pk INTEGER PRIMARY KEY, rollout_id TEXT NOT NULL, attempt_id TEXT NOT NULL, "
        "span_id TEXT NOT NULL, sequence_id INTEGER NOT NULL, size INTEGER NOT NULL, data TEXT NOT NULL, "
        "UNIQUE (rollout_id, attempt_id, span_id))"
    )
    conn.execute("CREATE INDEX spans_by_attempt ON spans (rollout_id, attempt_id, sequence_id)")
    rollouts = [(f"ro-{uuid.uuid4().hex[:12]}", f"at-{uuid.uuid4().hex[:8]}") for _ in range(args.n)]
    rows = [_row(r, a, s + 1, args.span_bytes) for r, a in rollouts for s in range(args.spans)]

    start = time.perf_counter()
    for i in range(0, len(rows), args.batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO spans (rollout_id, attempt_id, span_id, sequence_id, size, data) VALUES (?, ?, ?, ?, ?, ?)",
            rows[i : i + args.batch],
        )
        conn.execute("COMMIT")
    write_s = time.perf_counter() - start

    start = time.perf_counter()
    read = 0
    for rollout_id, _ in rollouts:
        read += len(
            conn.execute("SELECT data FROM spans WHERE rollout_id = ? ORDER BY sequence_id", (rollout_id,)).fetchall()
        )
    read_s = time.perf_counter() - start
    size = os.path.getsize(path) + (os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0)
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    os.rmdir(directory)
    return {
        "rows": len(rows),
        "batch": args.batch,
        "synchronous": args.synchronous,
        "page_size": args.page_size,
        "write_s": round(write_s, 3),
        "rows_per_s_write": round(len(rows) / write_s),
        "rollouts_per_s_write": round(args.n / write_s, 1),
        "read_s": round(read_s, 3),
        "rows_per_s_read": round(read / read_s),
        "file_mb": round(size / 1e6, 1),
    }


CHECKPOINT_COMMITS = 256
"""Commits between two passive checkpoints (the store's Checkpointer is asked every 256 commits)."""


def _store_file(path: str) -> None:
    """A new store file, made by the SQLite store itself (setup only: the schema, indexes and triggers it writes)."""
    from agentlightning_sqlite.backend import SqliteBackend

    SqliteBackend(path).close()


def _store_rows(n: int, spans: int, span_bytes: int) -> List[List[tuple]]:  # type: ignore[type-arg]
    """Per rollout, the span rows the store writes for the shared workload's spans (rollout and attempt ids, span id,
    sequence id, JSON size, JSON text): encoded with the store's codec, before the clock starts."""
    from agentlightning.types.tracer import Span
    from agentlightning_sqlite.codec import encode
    from runner_pattern import otel_attributes

    out = []
    for _ in range(n):
        rollout_id, attempt_id, trace = f"ro-{uuid.uuid4().hex[:12]}", f"at-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        rows = []
        for seq in range(1, spans + 1):
            span = Span.from_attributes(
                rollout_id=rollout_id,
                attempt_id=attempt_id,
                sequence_id=seq,
                trace_id=trace,
                span_id=os.urandom(8).hex(),
                parent_id=None,
                name=f"step-{seq}",
                attributes=otel_attributes(seq, span_bytes),
            )
            data = encode(span)
            rows.append((rollout_id, attempt_id, span.span_id, seq, len(data), data))
        out.append(rows)
    return out


def run_store_rows(args: argparse.Namespace) -> Dict[str, Any]:
    """The store's own statements for every span write, one transaction per ``args.group`` spans (see the module
    docstring)."""
    from agentlightning_sqlite.transaction import COUNTERS_UPSERT, SPAN_INSERT

    directory = tempfile.mkdtemp(prefix="sqlite-anchor-", dir=args.dir)
    path = os.path.join(directory, "anchor.db")
    _store_file(path)
    per_rollout = _store_rows(args.n, args.spans, args.span_bytes)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA synchronous = {args.synchronous}")
    conn.execute("PRAGMA wal_autocheckpoint = 2048")
    conn.execute("PRAGMA journal_size_limit = 16777216")
    conn.executemany(  # the rollouts the spans belong to (their first span sets a flag on this row, by trigger)
        "INSERT INTO rollouts (rollout_id, status, start_time, data) VALUES (?, 'running', 0, '{}')",
        [(rows[0][0],) for rows in per_rollout],
    )
    # K workers: K rollouts at a time, their spans interleaved as concurrent writers issue them
    order = []
    for first in range(0, args.n, args.workers):
        running = per_rollout[first : first + args.workers]
        for seq in range(args.spans):
            order.extend(rows[seq] for rows in running if seq < len(rows))
    execute = conn.execute
    group = args.group
    commits = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(0, len(order), group):
        execute("BEGIN IMMEDIATE")
        execute("PRAGMA data_version").fetchone()
        for row in order[i : i + group]:
            execute(SPAN_INSERT, row)
            execute(COUNTERS_UPSERT, (row[0], row[3] + 1, 1, row[4], row[1], time.time()))
        execute("COMMIT")
        commits += 1
        if not commits % CHECKPOINT_COMMITS:
            execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    cpu, wall = max(time.process_time() - cpu, 1e-9), time.perf_counter() - wall
    stored = conn.execute("SELECT count(*), sum(span_count) FROM span_counters").fetchone()
    conn.close()
    shutil.rmtree(directory)
    if stored != (args.n, len(order)):
        raise RuntimeError(f"anchor stored {stored}, expected {(args.n, len(order))}")
    return {
        "rows": len(order),
        "group": group,
        "workers": args.workers,
        "synchronous": args.synchronous,
        "commits": commits,
        "write_s": round(wall, 3),
        "write_cpu_s": round(cpu, 3),
        "cpu_us_per_span": round(cpu / len(order) * 1e6, 1),
        "rows_per_cpu_s": round(len(order) / cpu),
        "rollouts_per_cpu_s": round(args.n / cpu, 1),
        "rollouts_per_s_write": round(args.n / wall, 1),
    }


def parse(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="rollouts")
    parser.add_argument("--spans", type=int, default=20, help="spans per rollout")
    parser.add_argument("--span-bytes", type=int, default=2048, help="approximate attribute bytes per span")
    parser.add_argument("--batch", type=int, default=100, help="rows per committed transaction")
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default="NORMAL")
    parser.add_argument("--page-size", type=int, default=4096)
    parser.add_argument("--dir", default=None, help="where to put the temporary database (default: system tmp)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--store-rows", action="store_true", help="the store's file, rows and statements per span")
    parser.add_argument("--group", type=int, default=1, help="--store-rows: span writes per committed transaction")
    parser.add_argument("--workers", type=int, default=4, help="--store-rows: rollouts written in turn")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse(argv)
    result = run_store_rows(args) if args.store_rows else run(args)
    if "--json" in (argv or []) or parse(argv).json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:22s}{value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
