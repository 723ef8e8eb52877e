"""The tiny transformer and the policy: shapes, padding, sampling, per-token log-probs."""

from __future__ import annotations

import pytest
import torch
from agentlightning_torch.model import TinyCausalLM, TinyConfig, causal_padding_mask
from agentlightning_torch.policy import build_policy


def test_forward_shapes_and_padding_independence() -> None:
    torch.manual_seed(0)
    model = TinyCausalLM(TinyConfig(vocab_size=11, d_model=16, n_layers=2, n_heads=2, max_len=32)).eval()
    ids = torch.randint(5, 11, (3, 7))
    logits = model(ids)
    assert logits.shape == (3, 7, 11)
    # the same row left-padded by 3 gives the same logits at its real positions
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids[:1]], dim=1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 7, dtype=torch.long)], dim=1)
    out = model(padded, mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 3:], logits[0], atol=1e-5, rtol=1e-5)


def test_mask_never_hides_a_whole_row() -> None:
    mask = causal_padding_mask(torch.tensor([[0, 0, 1, 1]]))
    assert mask.shape == (1, 1, 4, 4)
    assert mask.any(-1).all()
    assert not mask[0, 0, 3, 0] and mask[0, 0, 3, 2]


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="multiple of n_heads"):
        TinyConfig(vocab_size=5, d_model=10, n_heads=3)
    model = TinyCausalLM(TinyConfig(vocab_size=5, max_len=4))
    with pytest.raises(ValueError, match="max_len=4"):
        model(torch.zeros(1, 5, dtype=torch.long))


def test_generate_and_logprobs() -> None:
    policy = build_policy(alphabet="abcAB", d_model=16, n_layers=1, n_heads=2, seed=1)
    prompts = [policy.encode_chat([{"role": "user", "content": w}]) for w in ("a", "abcab")]
    out = policy.generate(prompts, n=3, max_new_tokens=4, generator=torch.Generator().manual_seed(0))
    assert [len(group) for group in out] == [3, 3]
    for group in out:
        for sample in group:
            assert 1 <= len(sample.token_ids) <= 4
            assert (sample.finish_reason == "stop") == (sample.token_ids[-1] == policy.eos_token_id)
            assert policy.eos_token_id not in sample.token_ids[:-1]
    greedy = policy.generate(prompts, n=2, max_new_tokens=4, temperature=0)
    assert greedy[0][0].token_ids == greedy[0][1].token_ids
    responses = [[5, policy.eos_token_id], [6]]
    logp, entropy, mask = policy.token_logprobs(prompts, responses)
    assert logp.shape == entropy.shape == mask.shape == (2, 2)
    assert mask.tolist() == [[True, True], [True, False]]
    assert (logp <= 0).all() and logp[1, 1] == 0 and torch.isfinite(logp).all()
    # the log-prob of a response equals the sum of next-token log-probs of the full sequence
    full = torch.tensor([prompts[0] + responses[0]])
    ref = torch.log_softmax(policy.logits(full, torch.ones_like(full)), -1)[0]
    start = len(prompts[0]) - 1
    expected = ref[start, 5] + ref[start + 1, policy.eos_token_id]
    torch.testing.assert_close(logp[0].sum(), expected, atol=1e-5, rtol=1e-5)
