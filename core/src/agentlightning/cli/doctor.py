"""``agl doctor [--store URL]``: is LLM capture working? The supported LLM libraries installed here, and, given a
store, whether its latest rollouts have LLM spans with token ids (exit status 1 when they do not)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, Dict, List

from agentlightning.instrumentation.doctor import CaptureReport, diagnose, library_status


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="URL", help="A store to inspect (sqlite:///run.db, http://HOST:PORT).")
    parser.add_argument("--rollouts", type=int, default=5, metavar="N", help="How many latest rollouts (default 5).")
    parser.add_argument("--json", action="store_true", help="Print machine-readable JSON.")
    parser.set_defaults(func=handle)


async def _inspect(url: str, limit: int) -> CaptureReport:
    from agentlightning.store import open_store

    store = open_store(url)
    try:
        rollouts = (await store.query_rollouts()).items
        spans: List[List[Any]] = []
        for rollout in rollouts[-limit:]:
            spans.append(list((await store.query_spans(rollout.rollout_id)).items))
        return diagnose(spans)
    finally:
        await store.close()


def handle(args: argparse.Namespace) -> int:
    libraries = library_status()
    report = asyncio.run(_inspect(args.store, args.rollouts)) if args.store else None
    problems = report.problems if report is not None else []
    if report is not None and report.rollouts == 0:
        problems = [f"the store at {args.store} has no rollouts yet"]
    if args.json:
        payload: Dict[str, Any] = {"libraries": libraries, "problems": problems}
        if report is not None:
            payload["rollouts"] = report.rollouts
            payload["llm_spans"] = report.llm_spans
            payload["llm_spans_with_token_ids"] = report.llm_spans_with_token_ids
        print(json.dumps(payload, indent=2))
    else:
        print("LLM libraries (captured by the default tracer when imported):")
        for lib in libraries:
            state = f"{lib['version'] or '?'}, captured on import" if lib["installed"] else "not installed"
            print(f"  {lib['library']:<14} {state}")
        if report is not None:
            print(
                f"Store {args.store}: {report.rollouts} rollout(s), {report.llm_spans} LLM span(s), "
                f"{report.llm_spans_with_token_ids} with token ids"
            )
        for problem in problems:
            print(f"PROBLEM: {problem}")
        if report is not None and not problems:
            print("OK: every rollout has LLM spans with token ids")
    return 1 if problems else 0
