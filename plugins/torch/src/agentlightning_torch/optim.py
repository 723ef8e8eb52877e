"""Adam without ``torch.optim`` (imports torch).

Any ``torch.optim`` optimiser imports ``torch._dynamo`` when it is built: several seconds of CPU at the start of a run
on a small machine, for a compiler the tiny policy never uses. This one does the same arithmetic as
``torch.optim.Adam`` (no weight decay, no amsgrad) and reads and writes its ``state_dict`` format, so checkpoints
move between the two.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Tuple

import torch

__all__ = ["Adam"]


class Adam:
    """``torch.optim.Adam(params, lr, betas, eps)``: ``step``, ``zero_grad``, ``state_dict``, ``load_state_dict``."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params: List[torch.Tensor] = list(params)
        if not self.params:
            raise ValueError("Adam got an empty parameter list")
        if not lr > 0:
            raise ValueError(f"Adam lr must be > 0, got {lr}")
        self.lr = float(lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.steps = [0] * len(self.params)
        self.exp_avg: List[Any] = [None] * len(self.params)
        self.exp_avg_sq: List[Any] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad
            if self.exp_avg[i] is None:
                self.exp_avg[i] = torch.zeros_like(p, memory_format=torch.preserve_format)
                self.exp_avg_sq[i] = torch.zeros_like(p, memory_format=torch.preserve_format)
            self.steps[i] += 1
            m, v = self.exp_avg[i], self.exp_avg_sq[i]
            m.lerp_(grad, 1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = self.steps[i]
            denom = (v.sqrt() / math.sqrt(1 - beta2**step)).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / (1 - beta1**step))

    def state_dict(self) -> Dict[str, Any]:
        """In ``torch.optim.Adam``'s format: per-parameter ``step``, ``exp_avg``, ``exp_avg_sq``, and one group."""
        state = {
            i: {"step": torch.tensor(float(self.steps[i])), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
            for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq, strict=True))
            if m is not None
        }
        group = {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": 0,
            "amsgrad": False,
            "maximize": False,
            "params": list(range(len(self.params))),
        }
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Reads this class's or ``torch.optim.Adam``'s state (one parameter group, same parameters)."""
        groups = state_dict.get("param_groups") or []
        count = sum(len(g.get("params", [])) for g in groups)
        if count != len(self.params):
            raise ValueError(f"optimizer state is for {count} parameters, this model has {len(self.params)}")
        for index, entry in (state_dict.get("state") or {}).items():
            i = int(index)
            p = self.params[i]
            if entry["exp_avg"].shape != p.shape:
                raise ValueError(f"optimizer state of parameter {i} has shape {tuple(entry['exp_avg'].shape)}")
            self.steps[i] = int(float(entry["step"]))
            self.exp_avg[i] = entry["exp_avg"].detach().clone().to(p.device, p.dtype)
            self.exp_avg_sq[i] = entry["exp_avg_sq"].detach().clone().to(p.device, p.dtype)
