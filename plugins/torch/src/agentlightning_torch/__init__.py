"""agentlightning-torch: RL and SFT for agents with PyTorch (policy server, GRPO, SFT, ``agl quickstart``).

Importing this package is light; torch is imported by the components that need it, when they are built.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GRPO", "PolicyServer", "SFT", "build_policy"]

_LAZY = {
    "GRPO": "agentlightning_torch.grpo:GRPO",
    "PolicyServer": "agentlightning_torch.server:PolicyServer",
    "SFT": "agentlightning_torch.sft:SFT",
    "build_policy": "agentlightning_torch.policy:build_policy",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'agentlightning_torch' has no attribute {name!r}")
    import importlib

    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
