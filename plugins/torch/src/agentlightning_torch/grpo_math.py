"""GRPO's arithmetic: group-relative advantages and the clipped policy-gradient loss (imports torch)."""

from __future__ import annotations

from typing import Hashable, List, Optional, Sequence

import attrs
import torch
from agentlightning.training import group_advantages as core_group_advantages

__all__ = ["group_advantages", "grpo_loss", "LossParts"]


def group_advantages(
    rewards: Sequence[float],
    groups: Sequence[Hashable],
    *,
    eps: float = 1e-4,
    flat_to_batch: bool = False,
    normalize_by_std: bool = True,
    std_over: str = "group",
) -> List[float]:
    """Core's :func:`agentlightning.training.group_advantages` with this algorithm's ``eps``; ``flat_to_batch``
    compares groups whose rewards are all equal with the whole batch (see there)."""
    return core_group_advantages(
        rewards, groups, eps=eps, flat_to_batch=flat_to_batch, normalize_by_std=normalize_by_std, std_over=std_over
    )


@attrs.define
class LossParts:
    loss: torch.Tensor
    policy: float
    entropy: float
    kl: float
    clip_fraction: float


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(values)
    return torch.where(mask, values, zero).sum() / mask.sum().clamp(min=1)


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip: float = 0.2,
    clip_high: Optional[float] = None,
    entropy: Optional[torch.Tensor] = None,
    entropy_coef: float = 0.0,
    ref_logp: Optional[torch.Tensor] = None,
    kl_coef: float = 0.0,
    uniform_kl: Optional[torch.Tensor] = None,
    uniform_kl_coef: float = 0.0,
) -> LossParts:
    """Clipped surrogate over response tokens (``mask``), mean over all unmasked tokens, minus an entropy bonus,
    plus ``kl_coef`` times the k3 estimate of KL(policy || reference).

    Shapes: ``logp``/``old_logp``/``mask`` (B, T), ``advantages`` (B,). Masked positions never reach ``exp`` (they
    are replaced by 0 first), so padding after eos cannot produce NaN or inf.
    """
    mask = mask.bool()
    zero = torch.zeros_like(logp)
    delta = torch.where(mask, logp - old_logp.detach(), zero)
    ratio = torch.exp(delta)
    adv = advantages.detach().to(logp.dtype)[:, None].expand_as(logp)
    unclipped = ratio * adv
    high = clip if clip_high is None else clip_high
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + high) * adv
    policy = _masked_mean(-torch.minimum(unclipped, clipped), mask)
    loss = policy
    ent_value = torch.zeros((), dtype=logp.dtype)
    if entropy is not None:
        ent_value = _masked_mean(entropy, mask)
        loss = loss - entropy_coef * ent_value
    if uniform_kl is not None and uniform_kl_coef:
        loss = loss + uniform_kl_coef * _masked_mean(uniform_kl, mask)
    kl_value = torch.zeros((), dtype=logp.dtype)
    if ref_logp is not None and kl_coef:
        log_r = torch.where(mask, ref_logp.detach() - logp, zero)
        kl_value = _masked_mean(torch.exp(log_r) - log_r - 1.0, mask)
        loss = loss + kl_coef * kl_value
    clipped_frac = _masked_mean(((ratio < 1.0 - clip) | (ratio > 1.0 + high)).to(logp.dtype), mask)
    return LossParts(
        loss=loss,
        policy=float(policy.detach()),
        entropy=float(ent_value.detach()),
        kl=float(kl_value.detach()),
        clip_fraction=float(clipped_frac.detach()),
    )
