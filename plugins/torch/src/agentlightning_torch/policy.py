"""The policy: a causal LM plus its tokenizer, with batched sampling and per-token log-probs (imports torch)."""

from __future__ import annotations

import math
import os
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import attrs
import torch
from torch.nn import functional as F

from .tokenizer import CharTokenizer

__all__ = ["Policy", "Sample", "build_policy", "set_torch_threads"]


def set_torch_threads(threads: Optional[int] = None) -> None:
    """One thread per process by default: with the server, store and trainer sharing two cores, more is slower."""
    n = threads or int(os.environ.get("AGL_TORCH_THREADS", "1"))
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # already set once in this process
        pass


@attrs.define
class Sample:
    """One generated answer: its token ids (with the eos when it stopped) and why it ended."""

    token_ids: List[int]
    finish_reason: str  # "stop" | "length"


class Policy:
    """A causal LM (``model(input_ids, attention_mask, position_ids) -> logits``) and a tokenizer.

    ``lock`` serialises sampling and weight updates when the server and the trainer share the policy.
    """

    def __init__(self, model: Any, tokenizer: Any, *, name: str = "policy", device: str = "cpu", hf: bool = False):
        self.model = model.to(device)
        self.tokenizer = tokenizer
        self.name = name
        self.device = device
        self.hf = hf
        self.lock = threading.RLock()
        self.pad_token_id: int = int(getattr(tokenizer, "pad_token_id", None) or 0)
        eos = getattr(tokenizer, "eos_token_id", None)
        if eos is None:
            raise ValueError("the tokenizer has no eos_token_id")
        self.eos_token_id = int(eos)

    # -- text ------------------------------------------------------------------------------------------------

    def encode_chat(self, messages: Sequence[Mapping[str, Any]]) -> List[int]:
        if self.hf:
            ids = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
            return list(ids["input_ids"] if isinstance(ids, Mapping) else ids)
        return list(self.tokenizer.encode_chat(messages))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    # -- model -----------------------------------------------------------------------------------------------

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        if self.hf:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
            return out.logits  # type: ignore[no-any-return]
        return self.model(input_ids, attention_mask, position_ids)  # type: ignore[no-any-return]

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        n: int = 1,
        max_new_tokens: int = 16,
        temperature: float = 1.0,
        top_p: float = 1.0,
        generator: Optional[torch.Generator] = None,
    ) -> List[List[Sample]]:
        """Sample ``n`` answers for each prompt in one batch (left-padded); returns ``[prompt][choice]``."""
        if not prompts:
            return []
        rows = [list(p) for p in prompts for _ in range(n)]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        done = torch.zeros(len(rows), dtype=torch.bool, device=self.device)
        out: List[List[int]] = [[] for _ in rows]
        with self.lock:
            was_training = self.model.training
            self.model.eval()
            try:
                for _ in range(max_new_tokens):
                    logits = self.logits(ids, mask)[:, -1, :].float()
                    token = _sample(logits, temperature, top_p, generator)
                    token = torch.where(done, torch.full_like(token, self.pad_token_id), token)
                    for i in (~done).nonzero().flatten().tolist():
                        out[i].append(int(token[i]))
                    ids = torch.cat([ids, token[:, None]], dim=1)
                    mask = torch.cat([mask, (~done).long()[:, None]], dim=1)
                    done = done | (token == self.eos_token_id)
                    if bool(done.all()):
                        break
            finally:
                self.model.train(was_training)
        samples = [Sample(t, "stop" if t and t[-1] == self.eos_token_id else "length") for t in out]
        return [samples[i * n : (i + 1) * n] for i in range(len(prompts))]

    def token_logprobs(
        self, prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], *, temperature: float = 1.0
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probs and entropies of each response token under sampling at ``temperature``, and the response
        mask, all (B, T) with T the longest response. Positions past a response's end hold 0 (never -inf), so
        masked sums stay finite."""
        stats = self.token_stats(prompts, responses, temperature=temperature)
        return stats[0], stats[1], stats[2]

    def token_stats(
        self, prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], *, temperature: float = 1.0
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`token_logprobs` plus, per response position, KL(uniform || policy) over the vocabulary: how far
        the rarest tokens have been pushed towards probability 0 (see ``grpo_loss``'s ``uniform_kl``)."""
        rows = [list(p) + list(r) for p, r in zip(prompts, responses, strict=True)]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        scale = temperature if temperature > 0 else 1.0
        logp_all = F.log_softmax(self.logits(ids, mask)[:, :-1, :].float() / scale, dim=-1)
        target = ids[:, 1:]
        token_logp = logp_all.gather(-1, target[..., None]).squeeze(-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        uniform_kl = -logp_all.mean(-1) - math.log(logp_all.shape[-1])
        t_max = max(len(r) for r in responses) or 1
        # response token k of row i is predicted at position len(prompt_i) - 1 + k (one gather for the batch)
        starts = torch.tensor([len(p) - 1 for p in prompts], dtype=torch.long, device=self.device)
        lengths = torch.tensor([len(r) for r in responses], dtype=torch.long, device=self.device)
        offsets = torch.arange(t_max, device=self.device)
        resp_mask = offsets[None, :] < lengths[:, None]
        index = (starts[:, None] + offsets[None, :]).clamp(0, token_logp.shape[1] - 1)
        zero = torch.zeros((), dtype=token_logp.dtype, device=self.device)

        def pick(values: torch.Tensor) -> torch.Tensor:
            return torch.where(resp_mask, values.gather(1, index), zero)

        return pick(token_logp), pick(entropy), resp_mask, pick(uniform_kl)

    # -- persistence -----------------------------------------------------------------------------------------

    def state_dict(self) -> Dict[str, Any]:
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with self.lock:
            self.model.load_state_dict(dict(state))


def _sample(
    logits: torch.Tensor, temperature: float, top_p: float, generator: Optional[torch.Generator]
) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(-1)
    probs = F.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < top_p
        sorted_p = torch.where(keep, sorted_p, torch.zeros_like(sorted_p))
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def build_policy(
    *,
    model_path: Optional[str] = None,
    alphabet: Optional[str] = None,
    d_model: int = 64,
    n_layers: int = 2,
    n_heads: int = 4,
    max_len: int = 128,
    seed: int = 0,
    device: str = "cpu",
    name: Optional[str] = None,
) -> Policy:
    """A tiny random transformer over a character tokenizer, or a local Hugging Face causal LM (``model_path``)."""
    set_torch_threads()
    if model_path:
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise ImportError("--model PATH needs transformers: pip install 'agentlightning-torch[hf]'") from exc
        if not os.path.isdir(model_path):
            raise FileNotFoundError(f"--model {model_path!r} is not a local Hugging Face model directory")
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(model_path)
        return Policy(model, tokenizer, name=name or os.path.basename(model_path.rstrip("/")), device=device, hf=True)
    from .model import TinyCausalLM, TinyConfig

    torch.manual_seed(seed)
    tokenizer = CharTokenizer(alphabet) if alphabet else CharTokenizer()
    config = TinyConfig(
        vocab_size=tokenizer.vocab_size, d_model=d_model, n_layers=n_layers, n_heads=n_heads, max_len=max_len
    )
    return Policy(TinyCausalLM(config), tokenizer, name=name or "tiny-char-lm", device=device)
