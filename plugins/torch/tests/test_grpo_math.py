"""Group-relative advantages and the clipped loss: invariants, clipping, NaN safety with masks after eos."""

from __future__ import annotations

import math

import pytest
import torch
from agentlightning_torch.grpo_math import group_advantages, grpo_loss
from hypothesis import given, settings
from hypothesis import strategies as st

rewards_and_groups = st.lists(
    st.tuples(st.floats(-10, 10, allow_nan=False), st.integers(0, 3)), min_size=1, max_size=40
)


@settings(deadline=None)  # timing varies on a loaded machine; the property is what is tested
@given(rewards_and_groups)
def test_advantages_are_centred_and_scaled_per_group(pairs: list) -> None:
    rewards = [r for r, _ in pairs]
    groups = [g for _, g in pairs]
    adv = group_advantages(rewards, groups)
    for g in set(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        values = [adv[i] for i in idx]
        assert abs(sum(values)) < 1e-6 * len(values)
        if len(idx) == 1 or len({rewards[i] for i in idx}) == 1:
            assert all(v == 0 for v in values)
        else:
            # normalised by the group's std: at most sqrt(n - 1) away from zero
            assert all(abs(v) <= math.sqrt(len(idx)) + 1e-6 for v in values)
    # order of the higher reward is kept within a group
    for i in range(len(rewards)):
        for j in range(len(rewards)):
            if groups[i] == groups[j] and rewards[i] > rewards[j]:
                assert adv[i] >= adv[j]


def test_advantages_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 rewards but 1 group"):
        group_advantages([1.0, 0.0], ["a"])


def test_loss_is_finite_with_infinite_values_behind_the_mask() -> None:
    logp = torch.tensor([[-0.5, -1.0, 0.0], [-0.2, 0.0, 0.0]], requires_grad=True)
    old = torch.tensor([[-0.5, -1.0, -math.inf], [-0.2, math.inf, -math.inf]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    ent = torch.tensor([[1.0, 1.0, math.nan], [1.0, math.nan, math.nan]])
    ref = torch.tensor([[-0.5, -1.0, math.inf], [-0.2, -math.inf, 0.0]])
    parts = grpo_loss(
        logp, old, torch.tensor([1.0, -1.0]), mask, entropy=ent, entropy_coef=0.1, ref_logp=ref, kl_coef=0.5
    )
    assert torch.isfinite(parts.loss)
    parts.loss.backward()
    assert torch.isfinite(logp.grad).all()
    assert logp.grad[0, 2] == 0 and logp.grad[1, 1] == 0 and logp.grad[1, 2] == 0
    # on-policy: ratio 1, loss = -mean(A over tokens) - 0.1 * entropy; KL(ref == policy) = 0
    assert parts.policy == pytest.approx(-(1 + 1 - 1) / 3)
    assert parts.kl == pytest.approx(0.0)
    assert parts.entropy == pytest.approx(1.0)


@given(st.floats(-3, 3), st.floats(-2, 2))
def test_clipping_removes_the_gradient_outside_the_trust_region(delta: float, advantage: float) -> None:
    logp = torch.tensor([[delta]], requires_grad=True)
    parts = grpo_loss(logp, torch.zeros(1, 1), torch.tensor([advantage]), torch.ones(1, 1, dtype=torch.bool), clip=0.2)
    parts.loss.backward()
    ratio = math.exp(delta)
    grad = float(logp.grad[0, 0])
    outside = (advantage > 0 and ratio > 1.2) or (advantage < 0 and ratio < 0.8)
    if outside:
        assert grad == 0
    else:
        assert grad == pytest.approx(-advantage * ratio, rel=1e-4, abs=1e-6)


def test_an_empty_mask_gives_zero_loss() -> None:
    logp = torch.zeros(2, 3, requires_grad=True)
    parts = grpo_loss(logp, logp.detach(), torch.ones(2), torch.zeros(2, 3, dtype=torch.bool))
    assert float(parts.loss.detach()) == 0.0


def test_flat_groups_are_compared_with_the_batch_when_asked() -> None:
    rewards = [0.1, 0.1, 1.0, 0.0, 1.0, 1.0]
    groups = ["wrong", "wrong", "mixed", "mixed", "right", "right"]
    plain = group_advantages(rewards, groups)
    assert plain[:2] == [0.0, 0.0] and plain[4:] == [0.0, 0.0]
    flat = group_advantages(rewards, groups, flat_to_batch=True)
    assert flat[2:4] == plain[2:4]  # groups with spread are unchanged
    assert flat[0] == flat[1] < 0 < flat[4] == flat[5]  # alike and wrong: pushed away; alike and right: kept
    assert group_advantages([0.5, 0.5], ["a", "b"], flat_to_batch=True) == [0.0, 0.0]  # no spread anywhere


def test_update_with_kl_to_the_frozen_initial_policy_moves_only_the_policy() -> None:
    import copy

    from agentlightning_torch.grpo import GRPO
    from agentlightning_torch.policy import Policy, build_policy

    policy = build_policy(alphabet="abAB", d_model=16, n_layers=1, n_heads=2, seed=0)
    algo = GRPO(kl_coef=0.5, epochs=3, learning_rate=1e-2)
    algo.policy = policy
    algo.reference = Policy(copy.deepcopy(policy.model).requires_grad_(False), policy.tokenizer)
    before = {k: v.clone() for k, v in algo.reference.model.state_dict().items()}
    prompt = policy.encode_chat([{"role": "user", "content": "ab"}])
    eos = policy.eos_token_id
    batch = [("g", prompt, [7, eos], 1.0), ("g", prompt, [8, eos], 0.1), ("g", prompt, [5], 0.0)]
    optimizer = torch.optim.Adam(policy.model.parameters(), lr=1e-2)
    stats = algo._update(batch, [1.2, -0.2, -1.0], optimizer)
    assert math.isfinite(stats["loss"])
    for key, value in algo.reference.model.state_dict().items():
        assert torch.equal(value, before[key])
    logp, _, _ = policy.token_logprobs([prompt], [[7, eos]])
    ref, _, _ = algo.reference.token_logprobs([prompt], [[7, eos]])
    assert float(logp.sum().detach()) > float(ref.sum())  # the rewarded answer became likelier than under the reference


def test_uniform_kl_lifts_a_token_the_entropy_bonus_leaves_near_zero() -> None:
    """A near-certain wrong answer: the entropy bonus barely moves the logit of a token with probability ~1e-9,
    the KL(uniform || policy) term pulls it up with a force that does not vanish."""

    def grad_on_rare(**kwargs: float) -> float:
        logits = torch.tensor([[20.0, 0.0, -1.0, -1.0]], requires_grad=True)  # token 3: the rare right answer
        logp_all = torch.log_softmax(logits, dim=-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1, keepdim=True)
        uniform_kl = (-logp_all.mean(-1) - math.log(4)).unsqueeze(-1)
        logp = logp_all[:, :1]
        parts = grpo_loss(
            logp, logp.detach(), torch.zeros(1), torch.ones(1, 1, dtype=torch.bool),
            entropy=entropy, uniform_kl=uniform_kl, **kwargs,
        )  # fmt: skip
        parts.loss.backward()  # type: ignore[no-untyped-call]
        assert logits.grad is not None
        return -float(logits.grad[0, 3])  # gradient descent raises the logit by this much per unit step

    by_entropy = grad_on_rare(entropy_coef=0.05)
    by_uniform = grad_on_rare(uniform_kl_coef=0.05)
    assert 0 < by_entropy < 1e-6
    assert by_uniform > 0.01  # about coef / vocabulary size


def test_clip_high_lets_a_rewarded_token_grow_further_than_clip() -> None:
    """With a positive advantage the gradient stops at ratio 1 + clip; ``clip_high`` moves only that upper bound."""

    def grad_at(ratio: float, **kwargs: float) -> float:
        logp = torch.tensor([[math.log(ratio)]], requires_grad=True)
        parts = grpo_loss(logp, torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1, dtype=torch.bool), **kwargs)
        parts.loss.backward()  # type: ignore[no-untyped-call]
        assert logp.grad is not None
        return float(logp.grad[0, 0])

    assert grad_at(1.5, clip=0.2) == 0.0
    assert grad_at(1.5, clip=0.2, clip_high=1.0) == pytest.approx(-1.5)
    assert grad_at(0.5, clip=0.2, clip_high=1.0) == pytest.approx(-0.5)  # the lower side is unclipped for A > 0


def test_advantages_without_std_scaling_keep_the_reward_scale() -> None:
    rewards = [1.0, 0.1, 0.1, 0.1]
    scaled = group_advantages(rewards, ["g"] * 4)
    plain = group_advantages(rewards, ["g"] * 4, normalize_by_std=False)
    assert plain == pytest.approx([0.675, -0.225, -0.225, -0.225])
    assert scaled[0] == pytest.approx(0.675 / (0.3897114 + 1e-4), rel=1e-5)  # population std of the group


@settings(deadline=None)
@given(
    st.lists(st.sampled_from("ABCD"), min_size=1, max_size=60),
    st.integers(1, 40),
    st.integers(0, 2**16),
)
def test_balanced_draws_take_classes_in_turn_and_never_repeat_a_task(labels: list, n: int, seed: int) -> None:
    import random

    from agentlightning_torch.grpo import draw_tasks

    dataset = [{"id": i, "answer": label} for i, label in enumerate(labels)]
    drawn = draw_tasks(dataset, n, random.Random(seed), balance_by="answer")
    assert len(drawn) == min(n, len(dataset))
    assert len({t["id"] for t in drawn}) == len(drawn)
    counts = {c: sum(t["answer"] == c for t in drawn) for c in set(labels)}
    available = {c: labels.count(c) for c in set(labels)}
    # a class short of its even share gives all it has; the others differ by at most one task
    full = [counts[c] for c in counts if counts[c] < available[c]]
    assert not full or max(full) - min(counts.values()) <= 1
    assert all(counts[c] == available[c] or counts[c] >= max(counts.values()) - 1 for c in counts)
    plain = draw_tasks(dataset, n, random.Random(seed))  # without balance_by: random.sample, as before
    assert plain == random.Random(seed).sample(dataset, min(n, len(dataset)))


def test_balanced_draws_name_a_task_field_that_cannot_be_balanced() -> None:
    import random

    from agentlightning_torch.grpo import draw_tasks

    with pytest.raises(ValueError, match="balance_by='answer'"):
        draw_tasks([{"answer": ["A"]}], 1, random.Random(0), balance_by="answer")
