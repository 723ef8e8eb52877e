"""Hard-example emphasis: each step's tasks come more from the classes with the lowest recent training reward."""

from __future__ import annotations

import random

import pytest
from agentlightning_torch.focus import TaskFocus
from agentlightning_torch.grpo import GRPOConfig
from hypothesis import given, settings
from hypothesis import strategies as st


@settings(deadline=None)
@given(
    st.lists(st.sampled_from("ABCD"), min_size=1, max_size=60),
    st.integers(1, 40),
    st.dictionaries(st.sampled_from("ABCD"), st.floats(0, 1)),
    st.integers(0, 2**16),
)
def test_draws_are_distinct_tasks_of_the_dataset(labels: list, n: int, recent: dict, seed: int) -> None:
    dataset = [{"id": i, "answer": label} for i, label in enumerate(labels)]
    drawn = TaskFocus("answer", recent=dict(recent)).draw(dataset, n, random.Random(seed))
    assert len({t["id"] for t in drawn}) == len(drawn) <= min(n, len(dataset))
    assert all(t in dataset for t in drawn)
    if all(labels.count(c) >= n for c in set(labels)):  # no class can run out: the full number is drawn
        assert len(drawn) == n


def test_the_class_with_the_lowest_recent_reward_is_drawn_most() -> None:
    dataset = [{"answer": c} for c in "ABCD" for _ in range(500)]
    focus = TaskFocus("answer", floor=0.3, recent={"A": 0.0, "B": 1.0, "C": 1.0, "D": 1.0})
    drawn = [t["answer"] for seed in range(50) for t in focus.draw(dataset, 16, random.Random(seed))]
    shares = {c: drawn.count(c) / len(drawn) for c in "ABCD"}
    # weights 1.3 : 0.3 : 0.3 : 0.3, i.e. a share of 0.59 for A and 0.14 for each of the others
    assert shares["A"] > 0.5 and all(0.08 < shares[c] < 0.2 for c in "BCD")
    unseen = TaskFocus("answer")  # before any reward every class weighs the same
    drawn = [t["answer"] for seed in range(50) for t in unseen.draw(dataset, 16, random.Random(seed))]
    assert all(0.18 < drawn.count(c) / len(drawn) < 0.32 for c in "ABCD")


def test_observed_rewards_are_a_moving_average_per_class() -> None:
    focus = TaskFocus("answer", decay=0.8)
    focus.observe({"answer": "A"}, 1.0)
    focus.observe({"answer": "A"}, 1.0)
    focus.observe({"answer": "B"}, 0.5)
    assert focus.recent == pytest.approx({"A": 0.36, "B": 0.1})


def test_bad_focus_settings_are_named() -> None:
    with pytest.raises(ValueError, match="focus_by='answer'"):
        TaskFocus("answer").draw([{"answer": ["A"]}], 1, random.Random(0))
    with pytest.raises(ValueError, match="focus_floor"):
        GRPOConfig(focus_by="answer", focus_floor=0.0)
    with pytest.raises(ValueError, match="balance_by and focus_by"):
        GRPOConfig(focus_by="answer", balance_by="answer")
