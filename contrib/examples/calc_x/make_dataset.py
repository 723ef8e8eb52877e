"""Regenerate data/train.jsonl and data/test.jsonl (deterministic): arithmetic questions with integer answers."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Dict, List

TEMPLATES = [
    "What is {a} + {b} * {c}?",
    "What is ({a} + {b}) * {c}?",
    "What is {a} * {b} - {c}?",
    "A shop sells {a} boxes of {b} pencils and then {c} more pencils. How many pencils is that?",
    "Tom has {a} apples, buys {b} bags of {c} apples each. How many apples does he have?",
    "What is ({a} - {b}) * ({c} + 2)?",
]


def _answer(index: int, a: int, b: int, c: int) -> int:
    return [a + b * c, (a + b) * c, a * b - c, a * b + c, a + b * c, (a - b) * (c + 2)][index]


def make(n: int, seed: int) -> List[Dict[str, object]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        t = rng.randrange(len(TEMPLATES))
        a, b, c = rng.randint(2, 99), rng.randint(2, 30), rng.randint(2, 20)
        rows.append(
            {"id": f"calc-{seed}-{i}", "question": TEMPLATES[t].format(a=a, b=b, c=c), "answer": _answer(t, a, b, c)}
        )
    return rows


def main() -> None:
    here = Path(__file__).parent / "data"
    here.mkdir(exist_ok=True)
    for name, n, seed in (("train", 256, 1), ("test", 64, 2)):
        with open(here / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            for row in make(n, seed):
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
