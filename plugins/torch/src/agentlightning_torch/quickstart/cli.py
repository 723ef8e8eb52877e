"""``agl quickstart``: train the bundled keyword agent with GRPO on this machine and write a report."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, Iterator, List, Optional

__all__ = ["configure", "run_quickstart", "step_fields"]

# Width of the quickstart's tiny model: 128 needs about half the steps of 64 and costs ~10% more per step (the forward
# passes are a small share of a rollout; the update takes twice as long), see docs/quickstart.md.
QUICKSTART_D_MODEL = 128
# GRPO options of the quickstart beyond GRPOConfig's defaults: advantages scaled by the batch's reward std, so a group
# that differs only by the 0.1 format shaping stays weak next to one that found the right answer; each step's keywords
# drawn more from the categories with the lowest recent training reward, so the category found last is sampled most.
QUICKSTART_GRPO: Dict[str, Any] = {"advantage_std": "batch", "focus_by": "answer", "focus_floor": 0.15}


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
        "./runs/quickstart-<timestamp>); an existing run directory is resumed from its last checkpoint (written "
        "every 10 steps, at the end, and on Ctrl-C or SIGTERM)",
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
        "--uniform-kl",
        type=float,
        default=None,
        help="weight of the KL(uniform || policy) term that keeps every answer reachable (default 0.05)",
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
    parser.set_defaults(func=main_interruptible)


def step_fields(steps: int) -> Any:
    """An ``on_step`` callback that shows GRPO's figures on a core progress line: step, policy version, train and
    held-out reward, answer entropy, share of groups with all-equal rewards (zero advantage), policy lag, and how many
    steps held-out reward has not improved (``stalled``)."""
    val: List[Optional[float]] = [None]

    def show(report: Any, reporter: Any) -> None:
        if report.kind == "val":
            val[0] = report.mean_reward
        fields: Dict[str, Any] = {
            "step": f"{report.step}/{steps}",
            "policy": f"v{report.policy_version}",
            "val": "-" if val[0] is None else f"{val[0]:.3f}",
        }
        if report.kind == "train":
            fields["train"] = f"{report.mean_reward:.3f}"
            if report.entropy is not None:
                fields["entropy"] = f"{report.entropy:.3f}"
            if report.zero_adv_groups is not None:
                fields["zero-adv"] = f"{report.zero_adv_groups:.0%}"
            if report.policy_lag is not None:
                fields["lag"] = str(report.policy_lag)
            fields["stalled"] = f"{report.stalled_steps} steps" if report.stalled_steps >= 10 else None
        fields["time"] = f"{report.elapsed:.0f} s"
        reporter.update(show=not reporter.tty, **fields)

    return show


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
    progress: Any = None,
    quiet: bool = False,
    uniform_kl_coef: Optional[float] = None,
) -> Dict[str, Any]:
    """Train the keyword agent with GRPO; returns the summary (also written to ``run_dir/summary.json``).

    ``progress``: a core :class:`~agentlightning.trainer.ProgressReporter` (default: one on stderr, silent when
    ``quiet``); the Trainer polls the store's counts into it and GRPO adds its figures (:func:`step_fields`).
    """
    import attrs
    from agentlightning.adapter import LlmProxyTraceToTriplet
    from agentlightning.runner import LitAgentRunner
    from agentlightning.trainer import ProgressReporter, Trainer

    from ..grpo import GRPO
    from .agent import keyword_agent
    from .task import ALPHABET, make_datasets
    from .tracer import QuickstartTracer

    os.makedirs(run_dir, exist_ok=True)
    store_path = os.path.join(run_dir, "store.db")
    store_url = "sqlite:///" + store_path
    train, val = make_datasets(n_train=n_train, n_val=n_val, seed=seed, same_group=True)
    reporter = progress or ProgressReporter(log=False, tty_interval=1.0, log_interval=30.0, rewards=False, quiet=quiet)
    reporter.rewards = False  # GRPO reports the rewards; reading every rollout's spans again would cost store time
    show = step_fields(steps)
    extra: Dict[str, Any] = dict(QUICKSTART_GRPO)
    if uniform_kl_coef is not None:
        extra["uniform_kl_coef"] = uniform_kl_coef
    algorithm = GRPO(
        model=model,
        model_config={} if model else {"alphabet": ALPHABET, "d_model": QUICKSTART_D_MODEL},
        on_step=lambda report: show(report, reporter),
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
        **extra,
    )
    runner: LitAgentRunner[Any] = LitAgentRunner(
        tracer=QuickstartTracer(), max_concurrency=concurrency, poll_interval=0.05, heartbeat_interval=10.0
    )
    trainer = Trainer(
        algorithm=algorithm,
        store=store_url,
        runner=runner,
        adapter=LlmProxyTraceToTriplet(),
        n_runners=runners,
        strategy=strategy,
        progress=reporter,
    )
    started = time.time()
    with sigterm_as_interrupt():  # a checkpoint is written on SIGTERM as on Ctrl-C
        trainer.fit(keyword_agent, train, val_dataset=val)
    wall = time.time() - started
    history = [attrs.asdict(h) for h in algorithm.history]
    return _report(run_dir, store_url, history, wall, algorithm, target or None)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a job scheduler's stop) stops training as Ctrl-C does: GRPO writes a checkpoint of the steps
    done, runner processes stop, and ``KeyboardInterrupt`` is raised. Only in the main thread (signals go there)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def forward(signum: int, frame: Any) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report(
    run_dir: str, store_url: str, history: List[Dict[str, Any]], wall: float, algorithm: Any, target: Optional[float]
) -> Dict[str, Any]:
    from .report import describe, first_and_last, plot_curves, write_summary

    val_start, val_end = first_and_last(history, "val")
    train_start, train_end = first_and_last(history, "train")
    first = next((h for h in history if h["kind"] == "val" and h["mean_reward"] >= 0.9), None)
    trains = [h for h in history if h["kind"] == "train"]
    last_train = trains[-1] if trains else {}
    lags = [h["policy_lag"] for h in trains if h.get("policy_lag") is not None]
    longest_stall = max((h["stalled_steps"] for h in history), default=0)
    rollouts = algorithm.total_rollouts
    train_seconds = history[-1]["elapsed"] if history else 0.0
    curve = os.path.join(run_dir, "reward_curve.png")
    plot_curves(curve, history, target=target)
    summary = {
        "task": "keyword -> category by first letter (held-out keywords, greedy validation)",
        "val_reward_start": val_start,
        "val_reward_end": val_end,
        "train_reward_start": train_start,
        "train_reward_end": train_end,
        "seconds_to_val_0.9": first["elapsed"] if first else None,
        "steps_to_val_0.9": first["step"] if first else None,
        "rollouts_to_val_0.9": first["total_rollouts"] if first else None,
        "steps": len(trains),
        "rollouts": rollouts,
        "train_seconds": train_seconds,
        "wall_seconds": wall,
        "rollouts_per_second": rollouts / train_seconds if train_seconds else 0.0,
        "policy_versions": algorithm.policy_version,
        "entropy_end": last_train.get("entropy"),
        "zero_adv_groups_end": last_train.get("zero_adv_groups"),
        "max_policy_lag": max(lags) if lags else None,
        "longest_stall_steps": longest_stall,
        "profile_seconds": _profile(history, train_seconds),
        "stalled": longest_stall >= algorithm.config.stall_steps,
        "store": store_url,
        "curve": curve,
        "inspect": f"agl quickstart --inspect {run_dir}",
        "history": history,
    }
    write_summary(os.path.join(run_dir, "summary.json"), summary)
    summary["words"] = describe(summary)
    return summary


def _profile(history: List[Dict[str, Any]], total: float) -> Dict[str, float]:
    """Where the run's time went, summed over steps: train and validation rollouts (of which the policy server's
    forward passes and span writes), reading spans into triplets, and the GRPO updates; ``other`` is the rest
    (publishing versions, checkpoints, the first start)."""
    out: Dict[str, float] = {}
    for h in history:
        for key, value in (h.get("seconds") or {}).items():
            name = f"{h['kind']}_{key}" if key in ("rollouts", "read") else key
            out[name] = out.get(name, 0.0) + value
    spent = sum(v for k, v in out.items() if k.endswith(("_rollouts", "_read")) or k == "update")
    out["other"] = max(0.0, total - spent)
    return {k: round(v, 2) for k, v in out.items()}


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
        quiet=args.quiet,
        uniform_kl_coef=args.uniform_kl,
    )
    print(
        f"\n{summary['words']}\n\nReward curve: {summary['curve']}\n"
        f"Summary:      {os.path.join(run_dir, 'summary.json')}\n"
        f"Open the run again: {summary['inspect']}   (the store: {summary['store']}; "
        f"agl quickstart --run-dir {run_dir} resumes training)\n"
        f"Browse it:    {dashboard_hint(summary['store'])}"
    )
    return 0


def dashboard_hint(store_url: str) -> str:
    """The command that opens a run's store in the web dashboard (and how to get the dashboard when it is missing)."""
    import importlib.util

    command = f"agl dashboard --store {store_url}"
    if importlib.util.find_spec("agentlightning_dashboard") is None:
        return f"{command}   (after pip install agentlightning-dashboard)"
    return command


def main_interruptible(args: argparse.Namespace) -> int:
    """:func:`main`; Ctrl-C or SIGTERM ends it with exit code 130 and says how to resume."""
    try:
        return main(args)
    except KeyboardInterrupt:
        where = _run_dir(args.run_dir) if args.run_dir else "the run directory"
        print(
            f"\nagl quickstart: interrupted; the steps done are in a checkpoint under {where}/checkpoints. "
            f"agl quickstart --run-dir {where} resumes training.",
            file=sys.stderr,
        )
        return 130
