"""The quickstart task: file a keyword under one of four categories, decided by the keyword's first letter.

Letters fall in four groups (a-f: A, g-m: B, n-s: C, t-z: D). In the quickstart every letter of a keyword comes from
its first letter's group (``same_group=True``), which a randomly initialised model picks up from rewards alone in a
couple of minutes on two cores; with ``same_group=False`` only the first letter carries the category, which takes
several times more rollouts (per-letter plateaus). Either way the answer depends on the input: a policy that ignores
it scores at most 0.325 (0.25 for the right letter by luck plus the 0.1 format shaping on the others). Validation
keywords never appear in training.
"""

from __future__ import annotations

import random
import string
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["CATEGORIES", "ALPHABET", "category_of", "make_datasets", "score_answer"]

# first letters a-f -> A, g-m -> B, n-s -> C, t-z -> D
CATEGORIES = "ABCD"
_BOUNDS = ("abcdef", "ghijklm", "nopqrs", "tuvwxyz")
ALPHABET = string.ascii_lowercase + CATEGORIES


def category_of(keyword: str, buckets: Sequence[str] = _BOUNDS) -> str:
    """The category letter of ``keyword``: ``CATEGORIES[i]`` where ``buckets[i]`` holds its first letter."""
    first = keyword[:1].lower()
    for letter, bucket in zip(CATEGORIES, buckets, strict=True):
        if first in bucket:
            return letter
    raise ValueError(f"keyword {keyword!r} must start with one of {''.join(buckets)!r}")


def score_answer(answer: Optional[str], expected: str, finish_reason: Optional[str]) -> float:
    """1 for the exact category; 0.1 for any other answer of one character (this shaping teaches the format, one
    character and stop, before the first right answer); 0 for anything else, including an answer cut off by
    max_tokens (otherwise the model never learns to stop).

    The shaping rewards the format, never a particular letter: when it also rewarded a wrong category over other
    characters, the first category letter to close properly was learned for every input and the others were
    pushed towards probability 0 before the inputs were told apart (see docs/quickstart.md)."""
    if finish_reason != "stop" or answer is None:
        return 0.0
    text = answer.strip()
    if text == expected:
        return 1.0
    if len(text) == 1:
        return 0.1
    return 0.0


def _keyword(rng: random.Random, buckets: Sequence[str], lengths: Tuple[int, int], same_group: bool) -> str:
    first = rng.choice("".join(buckets))
    pool = next(b for b in buckets if first in b) if same_group else string.ascii_lowercase
    rest = rng.randint(lengths[0] - 1, lengths[1] - 1)
    return first + "".join(rng.choice(pool) for _ in range(rest))


def make_datasets(
    n_train: int = 2000,
    n_val: int = 200,
    seed: int = 0,
    buckets: Sequence[str] = _BOUNDS,
    lengths: Tuple[int, int] = (3, 5),
    same_group: bool = False,
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Disjoint train and validation tasks ``{"id", "keyword", "answer"}``, keywords of ``lengths`` letters; with
    ``same_group`` every letter of a keyword comes from its first letter's group."""
    if len(buckets) != len(CATEGORIES):
        raise ValueError(f"buckets must hold {len(CATEGORIES)} groups of first letters, got {len(buckets)}")
    rng = random.Random(seed)
    seen: set[str] = set()
    tasks: List[Dict[str, Any]] = []
    while len(tasks) < n_train + n_val:
        word = _keyword(rng, buckets, lengths, same_group)
        if word in seen:
            continue
        seen.add(word)
        tasks.append({"id": f"kw-{len(tasks)}", "keyword": word, "answer": category_of(word, buckets)})
    return tasks[:n_train], tasks[n_train:]
