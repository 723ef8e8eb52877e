"""Optimise the room selector's prompt with APO against any OpenAI-compatible endpoint.

    export OPENAI_BASE_URL=http://127.0.0.1:8000/v1   # or leave unset for api.openai.com
    export OPENAI_API_KEY=...
    python run_apo.py --runners 4 --rounds 2

Models come from flags or the environment: ``AGENT_MODEL`` (the agent), ``APO_GRADIENT_MODEL`` (critiques) and
``APO_EDIT_MODEL`` (edits), all defaulting to ``OPENAI_MODEL`` when that is set. The store is a SQLite file, so an
interrupted run resumes when started again with the same ``--store``; the report lands next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # runner processes import the agent from this folder by name
    sys.path.insert(0, HERE)


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or os.environ.get("OPENAI_MODEL") or default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_apo.py", description="APO on the room-selector agent.")
    parser.add_argument(
        "--run-dir",
        default=os.path.join("runs", "room_selector"),
        help="folder for the store and the report (default runs/room_selector)",
    )
    parser.add_argument("--store", help="store URL (default sqlite:///<run-dir>/store.db)")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("OPENAI_BASE_URL"),
        help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL, else api.openai.com)",
    )
    parser.add_argument("--agent-model", default=_env("AGENT_MODEL", "gpt-4.1-nano"))
    parser.add_argument("--gradient-model", default=_env("APO_GRADIENT_MODEL", "gpt-5-mini"))
    parser.add_argument("--edit-model", default=_env("APO_EDIT_MODEL", "gpt-4.1-mini"))
    parser.add_argument("--temperature", type=float, default=1.0, help="APO's diversity temperature")
    parser.add_argument("--runners", type=int, default=4, help="runner processes (default 4)")
    parser.add_argument("--rounds", type=int, default=2, help="beam rounds (default 2)")
    parser.add_argument("--beam-width", type=int, default=2)
    parser.add_argument("--branch-factor", type=int, default=2)
    parser.add_argument("--gradient-batch-size", type=int, default=4)
    parser.add_argument("--val-batch-size", type=int, default=8)
    parser.add_argument("--train-limit", type=int, help="use only the first N training tasks")
    parser.add_argument("--val-limit", type=int, help="use only the first N validation tasks")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for one batch of rollouts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no live progress")
    return parser


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Train, and return the run's summary (also in ``<run-dir>/apo_report.json``)."""
    import agentlightning as agl
    from openai import AsyncOpenAI
    from room_selector import SEED_PROMPT, load_tasks, room_selector

    os.makedirs(args.run_dir, exist_ok=True)
    store = args.store or f"sqlite:///{os.path.abspath(os.path.join(args.run_dir, 'store.db'))}"
    report = os.path.join(args.run_dir, "apo_report")
    train, val = load_tasks("train"), load_tasks("val")
    if args.train_limit:
        train = train[: args.train_limit]
    if args.val_limit:
        val = val[: args.val_limit]
    client = AsyncOpenAI(base_url=args.base_url, api_key=os.environ.get("OPENAI_API_KEY") or "none")
    algorithm = agl.APO(
        client,
        gradient_model=args.gradient_model,
        apply_edit_model=args.edit_model,
        diversity_temperature=args.temperature,
        gradient_batch_size=args.gradient_batch_size,
        val_batch_size=args.val_batch_size,
        beam_width=args.beam_width,
        branch_factor=args.branch_factor,
        beam_rounds=args.rounds,
        rollout_batch_timeout=args.timeout,
        report_path=report,
        seed=args.seed,
    )
    endpoint = args.base_url or "https://api.openai.com/v1"
    trainer = agl.Trainer(
        algorithm=algorithm,
        store=store,
        n_runners=args.runners,
        adapter=agl.TraceToMessages(),
        # the key stays in the environment (runner processes inherit it), never in the store
        initial_resources={
            "prompt_template": agl.PromptTemplate(template=SEED_PROMPT, engine="f-string"),
            "llm": agl.LLM(endpoint=endpoint, model=args.agent_model),
        },
        progress=not args.quiet,
    )
    trainer.fit(room_selector, train, val_dataset=val)
    summary = algorithm.state.summary() if algorithm.state is not None else {}
    summary.update(store=store, report=report + ".md")
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    summary = run(args)
    print(json.dumps(summary, indent=2))
    return 0


def quickstart_argv(namespace: Any) -> List[str]:
    """``run_apo.py`` arguments for the options ``agl quickstart`` shares with it (run dir, runners, seed, quiet)."""
    argv: List[str] = []
    if getattr(namespace, "run_dir", None):
        argv += ["--run-dir", str(namespace.run_dir)]
    runners = getattr(namespace, "runners", None)
    if isinstance(runners, int) and runners > 1:
        argv += ["--runners", str(runners)]
    if isinstance(getattr(namespace, "seed", None), int):
        argv += ["--seed", str(namespace.seed)]
    if getattr(namespace, "quiet", False):
        argv.append("--quiet")
    return argv


if __name__ == "__main__":
    raise SystemExit(main())
