"""Training rows: triplets -> rows (transition and trajectory), truncation, advantages, padding."""

from __future__ import annotations

from typing import List, Tuple

import pytest
from agentlightning.training import (
    RolloutSample,
    RowsConfig,
    Turn,
    build_rows,
    group_advantages,
    merge_turns,
    pad_rows,
    rollout_level_advantages,
    sample_from_triplets,
)
from agentlightning.types.core import Triplet
from hypothesis import given, settings
from hypothesis import strategies as st

tokens = st.lists(st.integers(min_value=0, max_value=50_000), min_size=1, max_size=12)


@st.composite
def turn_chains(draw: st.DrawFn) -> List[Turn]:
    """Turns of one rollout; each either continues the previous context exactly or starts afresh."""
    turns: List[Turn] = []
    context: List[int] = []
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        if turns and draw(st.booleans()):
            prompt = context + draw(st.lists(st.integers(0, 50_000), max_size=6))
        else:
            prompt = draw(tokens)
        response = draw(tokens)
        turns.append(Turn(prompt, response))
        context = prompt + response
    return turns


@st.composite
def sample_lists(draw: st.DrawFn) -> List[RolloutSample]:
    samples = []
    for i in range(draw(st.integers(min_value=0, max_value=6))):
        samples.append(
            RolloutSample(
                rollout_id=f"ro-{i}",
                group_id=f"data-{draw(st.integers(0, 2))}",
                turns=draw(turn_chains()),
                reward=draw(st.one_of(st.none(), st.floats(-5, 5, allow_nan=False))),
            )
        )
    return samples


levels = st.sampled_from(["transition", "trajectory"])


# -- every token lands in exactly one row ------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(sample_lists(), levels)
def test_every_turn_and_generated_token_lands_in_exactly_one_row(samples: List[RolloutSample], level: str) -> None:
    result = build_rows(samples, RowsConfig(level=level))  # type: ignore[arg-type]
    rows = result.rows
    for sample in samples:
        mine = [r for r in rows if r.rollout_id == sample.rollout_id]
        # each turn index in exactly one row, in order
        assert [i for r in mine for i in r.turn_indices] == list(range(len(sample.turns)))
        # the generated tokens (mask 1) are exactly the turns' responses, in order, once each
        generated = [t for r in mine for t, m in zip(r.response_ids, r.response_mask) if m == 1]
        assert generated == [t for turn in sample.turns for t in turn.response_ids]
        for row in mine:
            assert len(row.response_mask) == len(row.response_ids)
            assert row.group_id == sample.group_id  # groups intact
            last = sample.turns[row.turn_indices[-1]]
            # a row is exactly its last turn's full context: nothing lost, nothing duplicated
            assert row.input_ids == list(last.prompt_ids) + list(last.response_ids)
            assert row.prompt_ids == list(sample.turns[row.turn_indices[0]].prompt_ids)
            assert row.reward == (sample.reward if sample.reward is not None else 0.0)
    if level == "transition":
        assert len(rows) == sum(len(s.turns) for s in samples)
        assert all(r.response_mask == [1] * len(r.response_ids) for r in rows)
    assert result.stats["n_rows"] == len(rows)


def test_trajectory_merges_exact_continuations_only() -> None:
    turns = [
        Turn([1, 2], [3]),
        Turn([1, 2, 3, 9], [4, 5]),  # continues: new context token 9
        Turn([1, 2, 3, 9, 4, 5], [6]),  # continues with no new context
        Turn([1, 2, 7], [8]),  # history re-tokenised: a new row
    ]
    merged = merge_turns(turns, "trajectory")
    assert merged == [
        ([1, 2], [3, 9, 4, 5, 6], [1, 0, 1, 1, 1], [0, 1, 2]),
        ([1, 2, 7], [8], [1], [3]),
    ]
    assert [m[3] for m in merge_turns(turns, "transition")] == [[0], [1], [2], [3]]


def test_a_prompt_shorter_than_the_context_does_not_merge() -> None:
    assert len(merge_turns([Turn([1, 2], [3, 4]), Turn([1, 2, 3], [5])], "trajectory")) == 2


# -- truncation and over-long policies ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    sample_lists(),
    levels,
    st.integers(1, 8),
    st.integers(1, 8),
    st.sampled_from(["drop", "truncate"]),
    st.sampled_from(["truncate", "zero_reward", "drop"]),
)
def test_truncation_bounds_rows_and_keeps_masks_aligned(
    samples: List[RolloutSample], level: str, max_p: int, max_r: int, on_prompt: str, on_response: str
) -> None:
    config = RowsConfig(
        level=level, max_prompt_length=max_p, max_response_length=max_r,  # type: ignore[arg-type]
        overlong_prompt=on_prompt, overlong_response=on_response, reward_fill=-1.0,
    )  # fmt: skip
    bounded = build_rows(samples, config).rows
    full = build_rows(samples, RowsConfig(level=level, reward_fill=-1.0)).rows  # type: ignore[arg-type]
    assert len(bounded) == len(full)  # truncation never loses or adds a row
    for b, f in zip(bounded, full):
        assert len(b.prompt_ids) <= max_p and len(b.response_ids) <= max_r
        assert len(b.response_mask) == len(b.response_ids)
        assert b.prompt_ids == f.prompt_ids[-max_p:]  # the end of the prompt is kept
        assert b.response_ids == f.response_ids[:max_r] and b.response_mask == f.response_mask[:max_r]
        assert b.prompt_truncated == (len(f.prompt_ids) > max_p)
        assert b.response_truncated == (len(f.response_ids) > max_r)
        assert (b.group_id, b.rollout_id, b.turn_indices) == (f.group_id, f.rollout_id, f.turn_indices)
        expect_drop = (b.prompt_truncated and on_prompt == "drop") or (b.response_truncated and on_response == "drop")
        assert b.drop == expect_drop
        zeroed = b.response_truncated and on_response == "zero_reward"
        assert b.reward == (0.0 if zeroed else f.reward)


def test_overlong_counts_in_stats() -> None:
    sample = RolloutSample(rollout_id="r", group_id="g", turns=[Turn([1] * 5, [2] * 5), Turn([3], [4])], reward=1.0)
    result = build_rows([sample], RowsConfig(max_prompt_length=3, max_response_length=3, overlong_response="drop"))
    assert result.stats["n_prompt_truncated"] == 1 and result.stats["n_response_truncated"] == 1
    assert result.stats["n_dropped"] == 1 and [r.drop for r in result.rows] == [True, False]


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"level": "turn"}, "level"),
        ({"max_prompt_length": 0}, "max_prompt_length"),
        ({"max_response_length": "8"}, "max_response_length"),
        ({"overlong_prompt": "zero_reward"}, "overlong_prompt"),
        ({"overlong_response": "keep"}, "overlong_response"),
    ],
)
def test_rows_config_errors_name_the_field(kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        RowsConfig(**kwargs)


# -- triplets ----------------------------------------------------------------------------------------------------


def test_sample_from_triplets_uses_last_reward_and_skips_turns_without_ids() -> None:
    triplets = [
        Triplet(prompt={"token_ids": [1, 2]}, response={"token_ids": [3]}, reward=0.5),
        Triplet(prompt={"token_ids": []}, response={"token_ids": [4]}),
        Triplet(prompt={"token_ids": [5]}, response={"token_ids": [6]}, reward=None),
    ]
    sample = sample_from_triplets("r1", "d1", triplets)
    assert sample.turns == [Turn([1, 2], [3]), Turn([5], [6])]
    assert sample.reward == 0.5 and sample.skipped_turns == 1
    assert sample_from_triplets("r2", "d1", []).reward is None


def test_sample_from_triplets_rejects_non_int_token_ids() -> None:
    with pytest.raises(TypeError, match="triplet 0 prompt token_ids"):
        sample_from_triplets("r", "g", [Triplet(prompt={"token_ids": ["a"]}, response={"token_ids": [1]})])
    with pytest.raises(TypeError, match="triplet 0 response token_ids"):
        sample_from_triplets("r", "g", [Triplet(prompt={"token_ids": [1]}, response={"token_ids": "abc"})])


def test_reward_fill_and_stats_for_rollouts_without_trace() -> None:
    samples = [
        RolloutSample(rollout_id="a", group_id="g", turns=[Turn([1], [2])], reward=None),
        RolloutSample(rollout_id="b", group_id="g", turns=[], reward=1.0),
    ]
    result = build_rows(samples, RowsConfig(reward_fill=-0.5))
    assert [r.reward for r in result.rows] == [-0.5]
    assert result.stats["n_rollouts"] == 2 and result.stats["n_rollouts_w_trace"] == 1
    assert result.stats["n_rollouts_w_reward"] == 1 and result.stats["reward"] == 0.25


# -- advantages --------------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.floats(-10, 10, allow_nan=False)), max_size=20))
def test_group_advantages_are_centred_per_group(pairs: List[Tuple[int, float]]) -> None:
    groups = [g for g, _ in pairs]
    rewards = [r for _, r in pairs]
    adv = group_advantages(rewards, groups, normalize_by_std=False)
    for g in set(groups):
        members = [a for a, gg in zip(adv, groups) if gg == g]
        assert abs(sum(members)) < 1e-6 * max(1.0, len(members)) * 20
    assert group_advantages([1.0], ["g"]) == [0.0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.0, 0.5, 1.0])), min_size=1, max_size=20))
def test_flat_groups_can_be_compared_with_the_batch(pairs: List[Tuple[int, float]]) -> None:
    groups = [g for g, _ in pairs]
    rewards = [r for _, r in pairs]
    plain = group_advantages(rewards, groups)
    flat = group_advantages(rewards, groups, flat_to_batch=True)
    mean = sum(rewards) / len(rewards)
    spread = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
    for g in set(groups):
        idx = [i for i, gg in enumerate(groups) if gg == g]
        if len({rewards[i] for i in idx}) > 1:  # groups with a spread are unchanged
            assert all(flat[i] == plain[i] for i in idx)
        else:  # flat groups: 0 plainly, their distance to the batch mean with flat_to_batch
            assert all(plain[i] == 0.0 for i in idx)
            for i in idx:
                expected = (rewards[i] - mean) / (spread + 1e-6) if spread else 0.0
                assert flat[i] == pytest.approx(expected)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.0, 0.1, 1.0])), min_size=1, max_size=24))
def test_batch_std_keeps_the_groups_relative_scale(pairs: List[Tuple[int, float]]) -> None:
    groups = [g for g, _ in pairs]
    rewards = [r for _, r in pairs]
    centred = group_advantages(rewards, groups, normalize_by_std=False)
    scaled = group_advantages(rewards, groups, std_over="batch")
    mean = sum(rewards) / len(rewards)
    spread = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
    # one divisor for the whole batch: a group that differs only by 0.1 keeps a tenth of the scale of one that
    # differs by 1, where per-group std would make both as strong
    assert scaled == pytest.approx([a / (spread + 1e-6) for a in centred])


def test_std_over_must_be_group_or_batch() -> None:
    with pytest.raises(ValueError, match="std_over must be 'group' or 'batch', got 'rollout'"):
        group_advantages([1.0, 0.0], ["g", "g"], std_over="rollout")


def test_group_advantages_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 rewards but 1 group ids"):
        group_advantages([1.0, 2.0], ["g"])


def test_rollout_level_advantage_counts_each_rollout_once() -> None:
    # rollout a has three rows (three turns), b has one: row-level stats would weigh a three times
    samples = [
        RolloutSample(rollout_id="a", group_id="g", turns=[Turn([1], [2]), Turn([3], [4]), Turn([5], [6])], reward=1.0),
        RolloutSample(rollout_id="b", group_id="g", turns=[Turn([7], [8])], reward=0.0),
    ]
    rows = build_rows(samples).rows
    adv = rollout_level_advantages(rows, normalize_by_std=False)
    assert adv == [0.5, 0.5, 0.5, -0.5]


# -- padding -----------------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(sample_lists(), levels)
def test_padding_keeps_tokens_masks_and_scores_aligned(samples: List[RolloutSample], level: str) -> None:
    rows = build_rows(samples, RowsConfig(level=level)).rows  # type: ignore[arg-type]
    batch = pad_rows(rows, pad_token_id=-1)
    assert len(batch) == len(rows)
    widths = {len(x) for x in batch.input_ids}
    assert len(widths) <= 1
    for i, row in enumerate(rows):
        attended = [t for t, m in zip(batch.input_ids[i], batch.attention_mask[i]) if m]
        assert attended == row.input_ids
        width = len(batch.responses[i])
        assert batch.responses[i][: len(row.response_ids)] == row.response_ids
        assert batch.response_mask[i] == row.response_mask + [0] * (width - len(row.response_ids))
        assert batch.prompts[i][len(batch.prompts[i]) - len(row.prompt_ids) :] == row.prompt_ids
        assert sum(batch.token_level_scores[i]) == pytest.approx(row.reward)
        if row.response_ids:
            assert batch.token_level_scores[i][len(row.response_ids) - 1] == row.reward
        attended_positions = [p for p, m in zip(batch.position_ids[i], batch.attention_mask[i]) if m]
        assert attended_positions == list(range(len(row.input_ids)))
        assert batch.group_ids[i] == row.group_id and batch.rollout_ids[i] == row.rollout_id


def test_padding_to_fixed_lengths_and_errors() -> None:
    rows = build_rows([RolloutSample(rollout_id="r", group_id="g", turns=[Turn([1, 2], [3])], reward=1.0)]).rows
    batch = pad_rows(rows, 0, prompt_length=4, response_length=3)
    assert batch.input_ids == [[0, 0, 1, 2, 3, 0, 0]]
    assert batch.position_ids == [[0, 0, 0, 1, 2, 2, 2]]
    assert batch.token_level_scores == [[1.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="does not fit"):
        pad_rows(rows, 0, prompt_length=1)
    assert len(pad_rows([], 0)) == 0


def test_training_package_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = "import sys, agentlightning.training; print(any(m in sys.modules for m in ('torch', 'numpy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
