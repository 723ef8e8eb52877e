"""Regenerate ``data/train.jsonl`` and ``data/val.jsonl`` (deterministic; the files are committed).

python make_dataset.py [--train 24] [--val 24] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from typing import Any, Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from room_selector import DATA_DIR, NEEDS, best_room


def make_tasks(n: int, rng: random.Random, prefix: str) -> List[Dict[str, Any]]:
    tasks: List[Dict[str, Any]] = []
    while len(tasks) < n:
        needs = sorted(rng.sample(NEEDS, rng.choice([0, 1, 1, 2, 2, 3])))
        task: Dict[str, Any] = {
            "id": f"{prefix}{len(tasks) + 1:03d}",
            "date": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "time": f"{rng.randint(8, 17):02d}:{rng.choice(['00', '30'])}",
            "duration_min": rng.choice([30, 45, 60, 90, 120]),
            "attendees": rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 18]),
            "needs": needs,
        }
        choice = best_room(task)
        if choice is None:
            continue  # every task has an answer
        task["expected_choice"] = choice
        tasks.append(task)
    return tasks


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=24)
    parser.add_argument("--val", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    os.makedirs(DATA_DIR, exist_ok=True)
    for split, n, prefix in (("train", args.train, "t"), ("val", args.val, "v")):
        with open(os.path.join(DATA_DIR, f"{split}.jsonl"), "w", encoding="utf-8") as f:
            for task in make_tasks(n, rng, prefix):
                f.write(json.dumps(task) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
