"""``agl export`` and ``agl import``: traces out of a store as training data, and a traces export back in."""

from __future__ import annotations

import argparse
import datetime
import math
import sys
from typing import Any, List, Optional

from .dev import CommandError, guarded


def _ids(values: Optional[List[str]]) -> Optional[List[str]]:
    """``--rollout-ids a b --rollout-ids c,d`` -> ``[a, b, c, d]``; ``@FILE`` reads one id per line."""
    if values is None:
        return None
    out: List[str] = []
    for value in values:
        if value.startswith("@"):
            try:
                with open(value[1:], encoding="utf-8") as f:
                    out.extend(line.strip() for line in f if line.strip())
            except OSError as exc:
                raise CommandError(f"cannot read --rollout-ids {value}: {exc.strerror}") from exc
        else:
            out.extend(part for part in value.split(",") if part)
    return out


def parse_since(text: Optional[str]) -> Optional[float]:
    """A Unix time, an ISO 8601 date/time (UTC unless it names a zone), or a duration back from now (``30m``,
    ``2h``, ``7d``)."""
    if text is None:
        return None
    import time

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(text[:-1]) * units[text[-1]]
    problem = f"--since must be a Unix time, an ISO date/time or a duration like 30m, 2h, 7d; got {text!r}"
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise CommandError(problem)
        return number
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(problem) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def configure_export(parser: argparse.ArgumentParser) -> None:
    from agentlightning.training.export import EXPORT_FORMATS

    parser.add_argument("--store", required=True, metavar="URL", help="Store URL (sqlite:///run.db, http://...).")
    parser.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="traces",
        help="traces (default; re-importable), triplets (token ids and rewards), messages (chat per LLM call with "
        "ids and reward), openai-chat (bare OpenAI fine-tuning JSONL), parquet (needs pyarrow).",
    )
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="Output file ('-': stdout; .gz: gzip).")
    parser.add_argument("--status", nargs="+", default=None, metavar="STATUS", help="Only rollouts in these statuses.")
    parser.add_argument("--min-reward", type=float, default=None, metavar="X", help="Only rollouts with reward >= X.")
    parser.add_argument(
        "--rollout-ids", nargs="+", default=None, metavar="ID", help="Only these rollouts (comma lists, @FILE)."
    )
    parser.add_argument(
        "--since", default=None, metavar="WHEN", help="Only rollouts started since (Unix time, ISO date, or 2h, 7d)."
    )
    parser.add_argument("--page-size", type=int, default=500, metavar="N", help="Rollouts read per query (500).")
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
    parser.set_defaults(func=lambda args: guarded(handle_export, args))


def configure_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="A traces export (agl export --format traces).")
    parser.add_argument("--store", required=True, metavar="URL", help="Store URL to import into.")
    parser.add_argument("--batch-size", type=int, default=200, metavar="N", help="Rollouts per transaction (200).")
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
    parser.set_defaults(func=lambda args: guarded(handle_import, args))


def _statuses(values: Optional[List[str]]) -> Optional[List[str]]:
    from agentlightning.types.core import ROLLOUT_STATUSES

    if values is None:
        return None
    out = [part for value in values for part in value.split(",") if part]
    unknown = [s for s in out if s not in ROLLOUT_STATUSES]
    if unknown:
        raise CommandError(f"--status: unknown status {unknown[0]!r}; one of {', '.join(ROLLOUT_STATUSES)}")
    return out


def _run(coro_fn: Any) -> Any:
    import anyio

    return anyio.run(coro_fn)


def handle_export(args: argparse.Namespace) -> int:
    from agentlightning.store import open_store
    from agentlightning.training.export import ExportFilter, export_traces

    if args.page_size < 1:
        raise CommandError(f"--page-size must be >= 1, got {args.page_size}")
    selection = ExportFilter(
        status_in=_statuses(args.status),
        rollout_ids=_ids(args.rollout_ids),
        since=parse_since(args.since),
        min_reward=args.min_reward,
    )

    async def main() -> Any:
        async with open_store(args.store) as store:
            return await export_traces(
                store,
                args.output,
                format=args.format,
                filter=selection,
                page_size=args.page_size,
                progress=not args.no_progress,
            )

    try:
        stats = _run(main)
    except (ValueError, ImportError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    print(
        f"exported {stats.rollouts_exported} of {stats.rollouts_matched} rollouts as {stats.records} {args.format} "
        f"records to {args.output} in {stats.seconds:.1f} s ({stats.rollouts_per_second:.0f} rollouts/s)",
        file=sys.stderr,
    )
    return 0


def handle_import(args: argparse.Namespace) -> int:
    from agentlightning.store import open_store
    from agentlightning.training.export import import_traces

    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be >= 1, got {args.batch_size}")

    async def main() -> Any:
        async with open_store(args.store) as store:
            return await import_traces(store, args.file, batch_size=args.batch_size, progress=not args.no_progress)

    try:
        stats = _run(main)
    except (ValueError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    how = "ids kept" if stats.exact else "new ids, originals in metadata imported_from"
    print(
        f"imported {stats.rollouts_imported} rollouts ({stats.spans_imported} spans) and {stats.resources_imported} "
        f"resources into {args.store} ({how}); skipped {stats.rollouts_skipped} rollouts and "
        f"{stats.resources_skipped} resources already there",
        file=sys.stderr,
    )
    return 0


def configure_copy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", metavar="SRC", help="Store URL to copy from (sqlite:///run.db, postgresql://, http://)."
    )
    parser.add_argument("target", metavar="DST", help="Store URL to copy into (sqlite:///..., postgresql://...).")
    parser.add_argument("--batch-size", type=int, default=200, metavar="N", help="Rollouts per transaction (200).")
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
    parser.set_defaults(func=lambda args: guarded(handle_copy, args), command="store copy")


def handle_copy(args: argparse.Namespace) -> int:
    from agentlightning.store import open_store
    from agentlightning.store.copy import copy_store

    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.source == args.target:
        raise CommandError("SRC and DST are the same store")

    async def main() -> Any:
        async with open_store(args.source) as source, open_store(args.target) as target:
            return await copy_store(source, target, batch_size=args.batch_size, progress=not args.no_progress)

    try:
        stats = _run(main)
    except (ValueError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    written = stats.written
    print(
        f"copied {written.rollouts_imported} rollouts ({written.spans_imported} spans) and "
        f"{written.resources_imported} resources in {stats.seconds:.1f} s; skipped {written.rollouts_skipped} "
        f"rollouts and {written.resources_skipped} resources already there",
        file=sys.stderr,
    )
    for side, digest in (("source", stats.source), ("target", stats.target)):
        print(f"{side}: {digest.describe()}, checksum {digest.checksum[:16]}", file=sys.stderr)
    if not stats.verified:
        print(
            "MISMATCH: the target differs from the source (was the run still going, or DST not empty?)", file=sys.stderr
        )
        return 1
    print("verified: counts and checksums match", file=sys.stderr)
    return 0
