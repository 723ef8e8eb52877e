"""The end-of-run report: the reward curve (matplotlib), a JSON summary and the same summary in words."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["plot_curves", "write_summary", "first_and_last", "describe"]


def plot_curves(path: str, history: Sequence[Dict[str, Any]], *, target: Optional[float] = None) -> None:
    """Mean reward of training and held-out validation against seconds (bottom axis) and steps (top axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: Dict[str, List[Tuple[float, int, float]]] = {"train": [], "val": []}
    for item in history:
        series.setdefault(item["kind"], []).append(
            (float(item["elapsed"]), int(item["step"]), float(item["mean_reward"]))
        )
    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels = {"train": "training rollouts (sampled)", "val": "held-out keywords (greedy)"}
    for name, style in (("train", "-"), ("val", "-o")):
        pts = series.get(name, [])
        if pts:
            ax.plot([p[0] for p in pts], [p[2] for p in pts], style, markersize=4, label=labels[name])
    if target is not None:
        ax.axhline(target, color="grey", linestyle=":", linewidth=1, label=f"target {target:g}")
    ax.set_xlabel("seconds since training started")
    ax.set_ylabel("mean reward")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    points = sorted((p[0], p[1]) for pts in series.values() for p in pts)
    if len(points) >= 2 and points[-1][0] > points[0][0]:
        import numpy as np

        seconds = np.array([p[0] for p in points])
        steps = np.array([float(p[1]) for p in points])
        top = ax.secondary_xaxis(
            "top",
            functions=(
                lambda x: np.interp(np.asarray(x, dtype=float), seconds, steps),
                lambda s: np.interp(np.asarray(s, dtype=float), steps, seconds),
            ),
        )
        top.set_xlabel("GRPO step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_summary(path: str, summary: Dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")


def first_and_last(history: Sequence[Dict[str, Any]], kind: str) -> Tuple[Optional[float], Optional[float]]:
    values = [h["mean_reward"] for h in history if h["kind"] == kind]
    return (values[0], values[-1]) if values else (None, None)


def describe(summary: Dict[str, Any]) -> str:
    """The summary in words."""
    start, end = summary["val_reward_start"], summary["val_reward_end"]
    reached = summary["seconds_to_val_0.9"]
    lines = [
        f"Held-out reward went from {_num(start)} to {_num(end)} "
        + (
            f"and first reached 0.9 after {reached:.0f} s (step {summary['steps_to_val_0.9']})."
            if reached is not None
            else "and never reached 0.9."
        ),
        f"Training took {summary['train_seconds']:.0f} s ({summary['wall_seconds']:.0f} s with start-up): "
        f"{summary['steps']} steps, {summary['rollouts']} rollouts ({summary['rollouts_per_second']:.0f} per second), "
        f"{summary['policy_versions']} policy versions.",
        f"At the last step the answer entropy was {_num(summary['entropy_end'])} nats, "
        f"{_pct(summary['zero_adv_groups_end'])} of groups had all-equal rewards, "
        f"and rollouts were served by weights at most {summary['max_policy_lag']} versions old.",
    ]
    if summary.get("stalled"):
        lines.append(
            f"Warning: held-out reward stalled for up to {summary['longest_stall_steps']} steps "
            "(see docs/quickstart.md, 'When it stalls')."
        )
    return "\n".join(lines)


def _num(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.0%}"
