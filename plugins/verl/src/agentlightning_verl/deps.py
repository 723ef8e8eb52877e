"""Which parts of the GPU stack are importable, found without importing them (cheap enough for ``hooks``)."""

from __future__ import annotations

import importlib.util
from typing import Dict, List

__all__ = ["GPU_MODULES", "INSTALL_HINT", "MissingGPUExtraError", "gpu_status", "missing_gpu_modules", "require_gpu"]

# import name -> what it is for
GPU_MODULES: Dict[str, str] = {
    "verl": "PPO/GRPO trainer",
    "vllm": "rollout servers with token ids",
    "ray": "distributed workers",
    "torch": "model training",
    "omegaconf": "verl's config objects",
}
INSTALL_HINT = "pip install 'agentlightning-verl[gpu]'"


class MissingGPUExtraError(ImportError):
    """The GPU extra of agentlightning-verl is not installed."""


def gpu_status() -> Dict[str, bool]:
    """``{module: importable}`` for each of :data:`GPU_MODULES`; nothing is imported."""
    out = {}
    for name in GPU_MODULES:
        try:
            out[name] = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            out[name] = False
    return out


def missing_gpu_modules() -> List[str]:
    return [name for name, ok in gpu_status().items() if not ok]


def require_gpu(what: str = "VERL.run") -> None:
    """Raise :class:`MissingGPUExtraError` naming the extra to install when any GPU module is missing."""
    missing = missing_gpu_modules()
    if missing:
        raise MissingGPUExtraError(
            f"{what} needs the GPU extra: {', '.join(missing)} not installed. Install it with: {INSTALL_HINT} "
            "(Linux with CUDA; or pass trainer_cls= to use another trainer backend)."
        )
