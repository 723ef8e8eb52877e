"""``agl eval MODULE:AGENT --data FILE.jsonl --resources FILE.json``: reward statistics over a held-out split."""

from __future__ import annotations

import argparse

from .dev import add_common_arguments, guarded, load_resources, print_summary, run_baseline


def configure(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--resources", required=True, metavar="FILE.json", help="Named resources (JSON) to use.")
    parser.set_defaults(func=lambda args: guarded(handle, args))


def handle(args: argparse.Namespace) -> int:
    summary = run_baseline(args, split="val", resources=load_resources(args.resources))
    print_summary(summary, args.json)
    return 0
