"""GRPO's arithmetic: group-relative advantages and the clipped policy-gradient loss (imports torch)."""

from __future__ import annotations

from typing import Dict, Hashable, List, Optional, Sequence

import attrs
import torch

__all__ = ["group_advantages", "grpo_loss", "LossParts"]


def group_advantages(
    rewards: Sequence[float], groups: Sequence[Hashable], *, eps: float = 1e-4, flat_to_batch: bool = False
) -> List[float]:
    """``(reward - group mean) / (group std + eps)`` per sample.

    A group whose rewards are all equal carries no relative signal and gets 0, unless ``flat_to_batch``: then it is
    compared with the whole batch instead (``(reward - batch mean) / (batch std + eps)``), so a policy that answers a
    whole group alike and wrongly is still pushed away from that answer (and one that answers it alike and rightly
    is reinforced). That keeps a collapsed policy exploring; plain GRPO would stop learning on such groups.
    """
    if len(rewards) != len(groups):
        raise ValueError(f"{len(rewards)} rewards but {len(groups)} group keys")
    members: Dict[Hashable, List[int]] = {}
    for i, key in enumerate(groups):
        members.setdefault(key, []).append(i)
    values_all = [float(r) for r in rewards]
    batch_mean = sum(values_all) / len(values_all) if values_all else 0.0
    batch_std = (sum((v - batch_mean) ** 2 for v in values_all) / len(values_all)) ** 0.5 if values_all else 0.0
    out = [0.0] * len(rewards)
    for idx in members.values():
        values = [values_all[i] for i in idx]
        if max(values) == min(values):  # no relative signal (and no rounding noise posing as one)
            if flat_to_batch and batch_std > 0:
                for i in idx:
                    out[i] = (values_all[i] - batch_mean) / (batch_std + eps)
            continue
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        for i, v in zip(idx, values, strict=True):
            out[i] = (v - mean) / (std + eps)
    return out


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
    entropy: Optional[torch.Tensor] = None,
    entropy_coef: float = 0.0,
    ref_logp: Optional[torch.Tensor] = None,
    kl_coef: float = 0.0,
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
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * adv
    policy = _masked_mean(-torch.minimum(unclipped, clipped), mask)
    loss = policy
    ent_value = torch.zeros((), dtype=logp.dtype)
    if entropy is not None:
        ent_value = _masked_mean(entropy, mask)
        loss = loss - entropy_coef * ent_value
    kl_value = torch.zeros((), dtype=logp.dtype)
    if ref_logp is not None and kl_coef:
        log_r = torch.where(mask, ref_logp.detach() - logp, zero)
        kl_value = _masked_mean(torch.exp(log_r) - log_r - 1.0, mask)
        loss = loss + kl_coef * kl_value
    clipped_frac = _masked_mean(((ratio - 1.0).abs() > clip).to(logp.dtype), mask)
    return LossParts(
        loss=loss,
        policy=float(policy.detach()),
        entropy=float(ent_value.detach()),
        kl=float(kl_value.detach()),
        clip_fraction=float(clipped_frac.detach()),
    )
