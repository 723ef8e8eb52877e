"""Checkpoints next to the store: ``<dir>/step-<n>.pt`` holding the policy, the optimiser and the run state."""

from __future__ import annotations

import os
import re
from typing import Any, Dict, Optional

__all__ = ["checkpoint_dir_for", "latest_checkpoint", "save_checkpoint", "load_checkpoint"]

_NAME = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_dir_for(store: Any) -> Optional[str]:
    """``<store file's folder>/checkpoints`` for file-backed stores (SQLite); None for the others."""
    path = getattr(store, "path", None)
    if isinstance(path, str) and path and not path.startswith(":"):
        return os.path.join(os.path.dirname(os.path.abspath(path)), "checkpoints")
    return None


def latest_checkpoint(directory: Optional[str]) -> Optional[str]:
    if not directory or not os.path.isdir(directory):
        return None
    steps = [(int(m.group(1)), name) for name in os.listdir(directory) if (m := _NAME.match(name))]
    return os.path.join(directory, max(steps)[1]) if steps else None


def save_checkpoint(directory: str, step: int, state: Dict[str, Any], keep: int = 2) -> str:
    """Write atomically (temp file + rename) and keep the newest ``keep`` checkpoints."""
    import torch

    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"step-{step}.pt")
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)
    steps = sorted(int(m.group(1)) for name in os.listdir(directory) if (m := _NAME.match(name)))
    for old in steps[:-keep]:
        try:
            os.remove(os.path.join(directory, f"step-{old}.pt"))
        except FileNotFoundError:
            pass
    return path


def load_checkpoint(path: str) -> Dict[str, Any]:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise ValueError(f"{path} is not an agentlightning-torch checkpoint")
    return state
