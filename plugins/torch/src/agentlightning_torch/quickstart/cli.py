"""``agl quickstart``: train the bundled keyword agent with GRPO on this machine and write a report."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, TextIO

__all__ = ["configure", "run_quickstart", "ProgressLine"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--algorithm",
        choices=("grpo", "apo"),
        default="grpo",
        help="grpo (default): RL of a tiny local model; apo: the APO room-selector example "
        "(needs agentlightning-apo and an OpenAI-compatible endpoint).",
    )
    parser.add_argument(
        "--run-dir",
        help="where the store, checkpoints and report go (default: "
        "./runs/quickstart-<timestamp>); an existing run directory is resumed",
    )
    parser.add_argument("--model", help="a local Hugging Face causal LM directory instead of the tiny model")
    parser.add_argument("--steps", type=int, default=400, help="GRPO steps at most (default 400)")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16, help="tasks per step (default 16)")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--val-every", type=int, default=5)
    parser.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="sampling temperature of training rollouts (validation decodes greedily)",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=0.95,
        help="stop once held-out validation reward reaches this (default 0.95; 0 disables)",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=5.0,
        help="stop training after this long (default 5), with a last validation",
    )
    parser.add_argument("--runners", type=int, default=1, help="runner processes (default 1)")
    parser.add_argument("--concurrency", type=int, default=64, help="rollouts in flight per runner")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no live progress line")
    parser.add_argument("--inspect", metavar="RUN_DIR", help="show what a run left in its store, then exit")
    parser.set_defaults(func=main)


class ProgressLine:
    """The live display: step, policy version, rollouts/s, mean train and validation reward."""

    def __init__(self, steps: int, stream: Optional[TextIO] = None, quiet: bool = False) -> None:
        self.steps = steps
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.val: Optional[float] = None
        self.train: Optional[float] = None
        self.history: List[Dict[str, Any]] = []

    def __call__(self, report: Any) -> None:
        import attrs

        item = attrs.asdict(report)
        self.history.append(item)
        if report.kind == "val":
            self.val = report.mean_reward
        else:
            self.train = report.mean_reward
        if self.quiet:
            return
        rate = report.total_rollouts / report.elapsed if report.elapsed > 0 else 0.0

        def fmt(value: Optional[float]) -> str:
            return "  -  " if value is None else f"{value:.3f}"

        line = (
            f"step {report.step:>3}/{self.steps} | policy v{report.policy_version:<3} | {report.total_rollouts:>6} "
            f"rollouts | {rate:6.1f} rollouts/s | train reward {fmt(self.train)} | val reward {fmt(self.val)} | "
            f"{report.elapsed:5.0f} s"
        )
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()


def _run_dir(requested: Optional[str]) -> str:
    if requested:
        return os.path.abspath(requested)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.abspath(os.path.join("runs", f"quickstart-{stamp}"))


def run_quickstart(
    run_dir: str,
    *,
    steps: int = 400,
    group_size: int = 8,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    val_every: int = 5,
    target: Optional[float] = 0.95,
    max_seconds: Optional[float] = 300.0,
    runners: int = 1,
    concurrency: int = 64,
    seed: int = 0,
    model: Optional[str] = None,
    n_train: int = 2000,
    n_val: int = 200,
    val_size: Optional[int] = None,
    max_tokens: int = 3,
    temperature: float = 1.0,
    strategy: str = "multiprocess",
    progress: Optional[ProgressLine] = None,
) -> Dict[str, Any]:
    """Train the keyword agent with GRPO; returns the summary (also written to ``run_dir/summary.json``)."""
    from agentlightning.adapter import LlmProxyTraceToTriplet
    from agentlightning.runner import LitAgentRunner
    from agentlightning.trainer import Trainer

    from ..grpo import GRPO
    from .agent import keyword_agent
    from .task import ALPHABET, make_datasets
    from .tracer import QuickstartTracer

    os.makedirs(run_dir, exist_ok=True)
    store_path = os.path.join(run_dir, "store.db")
    store_url = "sqlite:///" + store_path
    train, val = make_datasets(n_train=n_train, n_val=n_val, seed=seed, same_group=True)
    progress = progress or ProgressLine(steps)
    algorithm = GRPO(
        model=model,
        model_config={} if model else {"alphabet": ALPHABET},
        on_step=progress,
        steps=steps,
        group_size=group_size,
        batch_size=batch_size,
        learning_rate=learning_rate,
        val_every=val_every,
        target_val_reward=target or None,
        max_seconds=max_seconds,
        seed=seed,
        val_size=val_size,
        max_tokens=max_tokens,
        temperature=temperature,
    )
    runner = LitAgentRunner(
        tracer=QuickstartTracer(), max_concurrency=concurrency, poll_interval=0.05, heartbeat_interval=10.0
    )
    trainer = Trainer(
        algorithm=algorithm,
        store=store_url,
        runner=runner,
        adapter=LlmProxyTraceToTriplet(),
        n_runners=runners,
        strategy=strategy,
        progress=False,
    )
    started = time.time()
    try:
        trainer.fit(keyword_agent, train, val_dataset=val)
    finally:
        progress.close()
    wall = time.time() - started
    return _report(run_dir, store_url, progress.history, wall, algorithm)


def _report(run_dir: str, store_url: str, history: List[Dict[str, Any]], wall: float, algorithm: Any) -> Dict[str, Any]:
    from .report import first_and_last, plot_curves, write_summary

    val_start, val_end = first_and_last(history, "val")
    train_start, train_end = first_and_last(history, "train")
    reached = next((h["elapsed"] for h in history if h["kind"] == "val" and h["mean_reward"] >= 0.9), None)
    rollouts = algorithm.total_rollouts
    curve = os.path.join(run_dir, "reward_curve.png")
    drawn = plot_curves(curve, history)
    summary = {
        "task": "keyword -> category by first letter (held-out keywords, greedy validation)",
        "val_reward_start": val_start,
        "val_reward_end": val_end,
        "train_reward_start": train_start,
        "train_reward_end": train_end,
        "seconds_to_val_0.9": reached,
        "rollouts": rollouts,
        "train_seconds": history[-1]["elapsed"] if history else 0.0,
        "wall_seconds": wall,
        "rollouts_per_second": rollouts / history[-1]["elapsed"] if history and history[-1]["elapsed"] else 0.0,
        "policy_versions": algorithm.policy_version,
        "store": store_url,
        "curve": curve,
        "curve_drawn_with": drawn,
        "inspect": f"agl quickstart --inspect {run_dir}",
        "history": history,
    }
    write_summary(os.path.join(run_dir, "summary.json"), summary)
    return summary


def _apo(args: argparse.Namespace) -> int:
    try:
        import agentlightning_apo  # noqa: F401
    except ImportError:
        print(
            "agl quickstart --algorithm apo needs the APO plugin, which is not installed: "
            "pip install agentlightning-apo (and set OPENAI_BASE_URL / OPENAI_API_KEY for its endpoint).",
            file=sys.stderr,
        )
        return 2
    if not (os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY")):
        print(
            "agl quickstart --algorithm apo needs an OpenAI-compatible endpoint: set OPENAI_BASE_URL "
            "(and OPENAI_API_KEY).",
            file=sys.stderr,
        )
        return 2
    try:
        from agentlightning_apo.quickstart import main as apo_main
    except ImportError:
        print(
            "agentlightning-apo is installed but provides no quickstart (agentlightning_apo.quickstart:main).",
            file=sys.stderr,
        )
        return 2
    return int(apo_main(args) or 0)


def main(args: argparse.Namespace) -> int:
    if args.inspect:
        from .inspect_store import inspect_run

        return inspect_run(args.inspect)
    if args.algorithm == "apo":
        return _apo(args)
    import warnings

    warnings.filterwarnings("ignore", message="Failed to initialize NumPy", category=UserWarning)  # torch w/o numpy
    try:
        import torch  # noqa: F401
    except ImportError:
        print(
            "agl quickstart needs PyTorch. Install a CPU build, e.g. pip install torch==2.13.0 (from the local "
            "wheel folder) or pip install torch --index-url https://download.pytorch.org/whl/cpu",
            file=sys.stderr,
        )
        return 2
    run_dir = _run_dir(args.run_dir)
    print(f"agl quickstart: training the keyword agent with GRPO; run directory {run_dir}", file=sys.stderr)
    summary = run_quickstart(
        run_dir,
        steps=args.steps,
        group_size=args.group_size,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        val_every=args.val_every,
        temperature=args.temperature,
        target=args.target,
        max_seconds=args.max_minutes * 60 if args.max_minutes else None,
        runners=args.runners,
        concurrency=args.concurrency,
        seed=args.seed,
        model=args.model,
        progress=ProgressLine(args.steps, quiet=args.quiet),
    )
    brief = {k: v for k, v in summary.items() if k != "history"}
    print(json.dumps(brief, indent=2))
    print(
        f"\nReward curve: {summary['curve']}\nSummary: {os.path.join(run_dir, 'summary.json')}\n"
        f"Inspect the store: {summary['inspect']}"
    )
    return 0
