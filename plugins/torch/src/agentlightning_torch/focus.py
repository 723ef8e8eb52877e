"""Hard-example emphasis for GRPO: draw more of each step's tasks from the classes whose recent training reward is
lowest, so that the class learned last is sampled (and its rare right answers reinforced) more often."""

from __future__ import annotations

import random
from typing import Any, Dict, Hashable, List, Sequence

import attrs

__all__ = ["TaskFocus"]


def _class_of(task: Any, field: str) -> Hashable:
    """A task's ``field`` (a dict key or attribute), which must be hashable."""
    value = task.get(field) if isinstance(task, dict) else getattr(task, field, None)
    try:
        hash(value)
    except TypeError as exc:
        raise ValueError(f"GRPO focus_by={field!r}: task values must be hashable, got {value!r}") from exc
    return value


@attrs.define
class TaskFocus:
    """Each drawn task's class is picked with weight ``max(0, 1 - recent reward) + floor`` (rewards in [0, 1]); the
    recent reward of a class is a moving average (``decay`` per observed group) of its groups' mean training reward,
    0 before its first group. Only training rewards are used."""

    field: str
    floor: float = 0.3
    decay: float = 0.8
    recent: Dict[Hashable, float] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not self.floor > 0:
            raise ValueError(f"GRPO focus_floor must be > 0, got {self.floor}")
        if not 0 <= self.decay < 1:
            raise ValueError(f"GRPO focus decay must be in [0, 1), got {self.decay}")

    def draw(self, dataset: Sequence[Any], n: int, rng: random.Random) -> List[Any]:
        """``n`` distinct tasks (fewer only when a class runs out), each class as often as its weight draws it."""
        classes: Dict[Hashable, List[Any]] = {}
        for task in dataset:
            classes.setdefault(_class_of(task, self.field), []).append(task)
        names = list(classes)
        weights = [max(0.0, 1.0 - self.recent.get(name, 0.0)) + self.floor for name in names]
        counts: Dict[Hashable, int] = {}
        for name in rng.choices(names, weights=weights, k=min(n, len(dataset))):
            counts[name] = counts.get(name, 0) + 1
        out: List[Any] = []
        for name in names:
            out.extend(rng.sample(classes[name], min(counts.get(name, 0), len(classes[name]))))
        return out

    def observe(self, task: Any, mean_reward: float) -> None:
        """Fold one group's mean training reward into its task's class."""
        name = _class_of(task, self.field)
        self.recent[name] = self.decay * self.recent.get(name, 0.0) + (1 - self.decay) * mean_reward
