"""``agl dev MODULE:AGENT --data FILE.jsonl``: run an agent over a dataset with the Baseline algorithm.

Also holds what ``agl eval`` shares: loading an agent, a JSONL dataset and a resources file.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any, Dict, List, Optional


class CommandError(Exception):
    """Bad input to a command; the message says what and where."""


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("agent", metavar="MODULE:AGENT", help="The agent, e.g. my_agents:solve (a LitAgent).")
    parser.add_argument("--data", required=True, metavar="FILE.jsonl", help="One task (JSON value) per line.")
    parser.add_argument("--store", default=None, metavar="URL", help="Store URL (default: memory://).")
    parser.add_argument("--n-runners", type=int, default=1, metavar="N", help="Runner workers (default 1).")
    parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")


def load_agent(spec: str) -> Any:
    from agentlightning.litagent import LitAgent

    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise CommandError(f"agent must be MODULE:AGENT (e.g. my_agents:solve), got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # agents next to the data, like `python -m`
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"cannot import module {module_name!r}: {exc}") from exc
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise CommandError(f"module {module_name!r} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    if isinstance(obj, type) and issubclass(obj, LitAgent):
        obj = obj()
    if not isinstance(obj, LitAgent):
        raise CommandError(f"{spec} is a {type(obj).__name__}, not a LitAgent; decorate the function with @agl.rollout")
    return obj


def load_jsonl(path: str) -> List[Any]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as exc:
        raise CommandError(f"cannot read --data {path}: {exc.strerror}") from exc
    tasks = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            tasks.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
    if not tasks:
        raise CommandError(f"{path} holds no tasks")
    return tasks


def load_resources(path: Optional[str]) -> Optional[Dict[str, Any]]:
    if path is None:
        return None
    from agentlightning.types.serialization import ValidationError, resources_from_dict

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise CommandError(f"cannot read --resources {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path}: not valid JSON: {exc.msg}") from exc
    if isinstance(data, dict) and "resources" in data and isinstance(data["resources"], dict):
        data = data["resources"]  # a ResourcesUpdate's JSON works too
    try:
        return resources_from_dict(data)
    except (ValidationError, ValueError, TypeError) as exc:
        raise CommandError(f"{path}: invalid resources: {exc}") from exc


def run_baseline(args: argparse.Namespace, *, split: str, resources: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Run the agent over the data with Baseline; returns the summary of the split."""
    from agentlightning.algorithm.fast import Baseline
    from agentlightning.trainer import Trainer

    agent = load_agent(args.agent)
    tasks = load_jsonl(args.data)
    if args.n_runners < 1:
        raise CommandError(f"--n-runners must be >= 1, got {args.n_runners}")
    baseline = Baseline(span_verbosity="none", polling_interval=0.5)
    trainer = Trainer(
        algorithm=baseline, store=args.store, n_runners=args.n_runners, initial_resources=resources, adapter=None
    )
    if split == "train":
        trainer.dev(agent, tasks)
    else:
        trainer.dev(agent, None, val_dataset=tasks)
    return baseline.summary(split)


def print_summary(summary: Dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))
        return

    def fmt(value: Any) -> str:
        return "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))

    print(f"rollouts:     {summary['count']}")
    print(
        f"success rate: {fmt(summary['success_rate'])} ({summary['succeeded']} succeeded, {summary['failed']} failed)"
    )
    print(f"reward mean:  {fmt(summary['mean'])}")
    print(f"reward std:   {fmt(summary['std'])}")
    print(f"reward min:   {fmt(summary['min'])}")
    print(f"reward max:   {fmt(summary['max'])}")


def guarded(fn: Any, args: argparse.Namespace) -> int:
    try:
        return int(fn(args) or 0)
    except CommandError as exc:
        print(f"agl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"agl {args.command}: interrupted", file=sys.stderr)
        return 130


def configure(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--resources", default=None, metavar="FILE.json", help="Named resources (JSON) to publish.")
    parser.set_defaults(func=lambda args: guarded(handle, args))


def handle(args: argparse.Namespace) -> int:
    summary = run_baseline(args, split="train", resources=load_resources(args.resources))
    print_summary(summary, args.json)
    return 0 if summary["count"] else 1
