"""Replay the quickstart's GRPO in one process (no policy server, store or runners) to study learning per step.

Same model, task, sampling, advantages and update as ``agl quickstart``; prints, every ``val_every`` steps, the
held-out reward per category with the most common greedy answers, and the training reward, answer entropy and share
of zero-advantage groups. Stops at held-out 0.9.

    python plugins/torch/benchmarks/quickstart_replay.py --seeds 0,1,2 --config '{"uniform_kl_coef": 0.0}'

Tune options with ``--split tune``: validation then uses 200 of the training keywords, held back from training, and
the quickstart's held-out keywords are not touched; report the chosen options' steps with the default ``--split
held-out``.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import time
from typing import Any, Dict, List, Optional, Tuple

import torch
from agentlightning_torch.grpo import GRPO, draw_tasks
from agentlightning_torch.grpo_math import group_advantages
from agentlightning_torch.policy import build_policy
from agentlightning_torch.quickstart.cli import QUICKSTART_D_MODEL, QUICKSTART_GRPO
from agentlightning_torch.quickstart.task import ALPHABET, make_datasets, score_answer


def replay(
    seed: int,
    steps: int,
    verbose: bool,
    d_model: int = QUICKSTART_D_MODEL,
    split: str = "held-out",
    betas: Tuple[float, float] = (0.9, 0.999),
    **config: Any,
) -> Tuple[Optional[int], List[Tuple[int, float]]]:
    grpo = GRPO(seed=seed, **{**QUICKSTART_GRPO, **config})
    cfg = grpo.config
    grpo.policy = policy = build_policy(alphabet=ALPHABET, seed=seed, d_model=d_model)
    optimizer = torch.optim.Adam(policy.model.parameters(), lr=cfg.learning_rate, betas=betas)
    train, val = make_datasets(2000, 200, seed=seed, same_group=True)
    if split == "tune":  # validate on training keywords held back from training; the held-out ones stay unseen
        train, val = train[:-200], train[-200:]
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)

    def ask(tasks: List[Dict[str, Any]], n: int, temperature: float) -> Tuple[List[List[int]], Any]:
        prompts = [policy.encode_chat([{"role": "user", "content": t["keyword"]}]) for t in tasks]
        out = policy.generate(prompts, n=n, max_new_tokens=cfg.max_tokens, temperature=temperature, generator=generator)
        return prompts, out

    history: List[Tuple[int, float]] = []
    for step in range(steps):
        if step % cfg.val_every == 0:
            _, out = ask(val, 1, 0.0)
            per: Dict[str, List[float]] = collections.defaultdict(list)
            answers: Dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
            for task, samples in zip(val, out, strict=True):
                text = policy.decode(samples[0].token_ids)
                per[task["answer"]].append(score_answer(text, task["answer"], samples[0].finish_reason))
                answers[task["answer"]][text] += 1
            mean = sum(sum(v) for v in per.values()) / len(val)
            history.append((step, mean))
            if verbose:
                by_class = {k: (round(sum(v) / len(v), 2), dict(answers[k].most_common(2))) for k, v in per.items()}
                print(f"step {step} held-out {mean:.3f} {by_class}", flush=True)
            if mean >= 0.9:
                return step, history
        if grpo.focus is not None:
            tasks = grpo.focus.draw(train, cfg.batch_size, rng)
        else:
            tasks = draw_tasks(train, cfg.batch_size, rng, balance_by=cfg.balance_by)
        prompts, out = ask(tasks, cfg.group_size, cfg.temperature)
        rows = []
        for i, (task, prompt, samples) in enumerate(zip(tasks, prompts, out, strict=True)):
            for s in samples:
                reward = score_answer(policy.decode(s.token_ids), task["answer"], s.finish_reason)
                rows.append(((i, tuple(prompt)), prompt, s.token_ids, reward))
        rewards = [r[3] for r in rows]
        if grpo.focus is not None:
            size = cfg.group_size
            for i, task in enumerate(tasks):
                grpo.focus.observe(task, sum(rewards[i * size : (i + 1) * size]) / size)
        adv = group_advantages(
            rewards,
            [r[0] for r in rows],
            flat_to_batch=cfg.flat_groups_to_batch,
            normalize_by_std=cfg.normalize_by_std,
            std_over=cfg.advantage_std,
        )
        size = cfg.group_size
        flat = sum(len(set(rewards[i * size : (i + 1) * size])) == 1 for i in range(len(tasks))) / len(tasks)
        keep = [i for i, a in enumerate(adv) if a != 0.0] or list(range(len(rows)))
        stats = grpo._update([rows[i] for i in keep], [adv[i] for i in keep], optimizer)
        if verbose and step % cfg.val_every == 0:
            print(f"   train {sum(rewards) / len(rewards):.3f} entropy {stats['entropy']:.3f} zero-adv {flat:.2f}")
    return None, history


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--config", default="{}", help="GRPOConfig fields as JSON")
    parser.add_argument("--betas", default="0.9,0.999", help="Adam's betas")
    parser.add_argument("--quiet", action="store_true", help="one line per seed")
    parser.add_argument("--d-model", type=int, default=QUICKSTART_D_MODEL, help="width of the tiny model")
    parser.add_argument(
        "--split",
        choices=("held-out", "tune"),
        default="held-out",
        help="validate on the held-out keywords (default) or, to tune options, on 200 training keywords held back",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed in [int(s) for s in args.seeds.split(",")]:
        began = time.time()
        reached, history = replay(
            seed,
            args.steps,
            not args.quiet,
            args.d_model,
            args.split,
            (float(args.betas.split(",")[0]), float(args.betas.split(",")[1])),
            **json.loads(args.config),
        )
        print(f"seed {seed}: steps to 0.9 {reached}, last held-out {history[-1][1]:.3f} ({time.time() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
