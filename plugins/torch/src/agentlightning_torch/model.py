"""A small decoder-only transformer built from a config with random weights (imports torch: load lazily)."""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import attrs
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["TinyConfig", "TinyCausalLM", "causal_padding_mask"]


@attrs.define(kw_only=True)
class TinyConfig:
    """Shape of :class:`TinyCausalLM`. ``vocab_size`` comes from the tokenizer."""

    vocab_size: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    max_len: int = 128
    dropout: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"TinyConfig.d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"TinyConfig.{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> Dict[str, Any]:
        return attrs.asdict(self)


def causal_padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Boolean (B, 1, L, L) mask: causal, padded keys hidden, the diagonal always visible (no all-masked rows)."""
    length = attention_mask.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=attention_mask.device).tril()
    allowed = causal[None, :, :] & attention_mask.bool()[:, None, :]
    allowed = allowed | torch.eye(length, dtype=torch.bool, device=attention_mask.device)[None]
    return allowed[:, None, :, :]


class _Block(nn.Module):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.ln1 = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, 4 * config.d_model), nn.GELU(), nn.Linear(4 * config.d_model, config.d_model)
        )
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        shape = (b, length, self.n_heads, d // self.n_heads)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
        drop = self.dropout if self.training else 0.0
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        x = x + self.proj(attn.transpose(1, 2).reshape(b, length, d))
        out: torch.Tensor = x + self.mlp(self.ln2(x))
        return out


class TinyCausalLM(nn.Module):
    """Token + learned position embeddings, pre-norm blocks, tied output head. ``forward`` returns logits."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(config.vocab_size, config.d_model)
        self.pos = nn.Embedding(config.max_len, config.d_model)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.apply(self._init)
        for block in self.blocks:  # GPT-2 style scaling of residual projections
            assert isinstance(block, _Block)
            nn.init.normal_(block.proj.weight, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        if input_ids.shape[1] > self.config.max_len:
            raise ValueError(f"sequence of {input_ids.shape[1]} tokens exceeds max_len={self.config.max_len}")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if position_ids is None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        x = self.tok(input_ids) + self.pos(position_ids)
        mask = causal_padding_mask(attention_mask)
        for block in self.blocks:
            x = block(x, mask)
        logits: torch.Tensor = self.ln_f(x) @ self.tok.weight.T
        return logits
