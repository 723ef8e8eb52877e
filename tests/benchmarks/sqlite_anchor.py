"""Anchor for the SQLite store's throughput: what bare stdlib ``sqlite3`` does with the shared workload's rows.

Inserts N x S span-sized JSON rows (the shape the store writes: a few indexed columns plus a JSON ``data`` column)
in batches, one committed transaction per batch, WAL journal, and reads them back per rollout. No store code is
involved, so the figures bound what the store can reach on this machine.

    python tests/benchmarks/sqlite_anchor.py                      # N=2000, S=20, batches of 100, NORMAL
    python tests/benchmarks/sqlite_anchor.py --batch 20 --synchronous FULL --page-size 8192 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
import uuid
from typing import Any, Dict, List, Optional


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
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    result = run(parse(argv))
    if "--json" in (argv or []) or parse(argv).json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:22s}{value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
