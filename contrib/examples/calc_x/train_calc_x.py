"""Train the Calc-X agent with VERL (GRPO) on one GPU.

    python train_calc_x.py --model Qwen/Qwen2.5-0.5B-Instruct --runners 8 [key.path=value ...]

``key.path=value`` arguments override the verl/agentlightning config (see ``build_config``); ``--dry-run`` prints
the composed config and exits (no GPU needed).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

HERE = Path(__file__).parent


def load_jsonl(path: Path, limit: Optional[int] = None) -> List[Dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def build_config(model: str, *, checkpoint_dir: str = "checkpoints/calc_x", epochs: int = 2) -> Dict[str, Any]:
    """A single-GPU GRPO config (fits Qwen2.5-0.5B/1.5B-Instruct on one 80 GB card)."""
    return {
        "agentlightning": {
            "trace_aggregator": {"level": "trajectory"},  # tool turns continue exactly: one row per episode
            "rollout_timeout_seconds": 600.0,
        },
        "data": {"train_batch_size": 32, "max_prompt_length": 2048, "max_response_length": 1024, "val_batch_size": 64},
        "actor_rollout_ref": {
            "model": {"path": model, "use_remove_padding": True, "enable_gradient_checkpointing": True},
            "actor": {
                "ppo_mini_batch_size": 32,
                "ppo_micro_batch_size_per_gpu": 4,
                "optim": {"lr": 1e-6},
                "use_kl_loss": False,
                "entropy_coeff": 0.0,
            },
            "rollout": {
                "name": "vllm",
                "mode": "async",
                "n": 4,
                "temperature": 1.0,
                "tensor_model_parallel_size": 1,
                "gpu_memory_utilization": 0.6,
                "log_prob_micro_batch_size_per_gpu": 8,
            },
            "ref": {"log_prob_micro_batch_size_per_gpu": 8},
        },
        "algorithm": {"adv_estimator": "grpo", "use_kl_in_reward": False},
        "trainer": {
            "n_gpus_per_node": 1,
            "nnodes": 1,
            "logger": ["console"],
            "project_name": "agentlightning",
            "experiment_name": "calc_x",
            "total_epochs": epochs,
            "save_freq": 20,
            "test_freq": 10,
            "val_before_train": True,
            "default_local_dir": checkpoint_dir,
        },
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="Qwen/Qwen2.5-0.5B-Instruct", help="HF model id or local path")
    parser.add_argument("--runners", type=int, default=8, help="concurrent agent runners")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=None, help="use only the first N training tasks")
    parser.add_argument("--checkpoint-dir", default="checkpoints/calc_x")
    parser.add_argument("--dry-run", action="store_true", help="print the composed config and exit")
    parser.add_argument("overrides", nargs="*", help="key.path=value config overrides")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from agentlightning_verl import VERL
    from calc_agent import calc_agent

    config = build_config(args.model, checkpoint_dir=args.checkpoint_dir, epochs=args.epochs)
    algorithm = VERL(config, overrides=args.overrides)
    if args.dry_run:
        print(json.dumps(algorithm.config, indent=2))
        return 0
    from agentlightning.trainer import Trainer

    train = load_jsonl(HERE / "data" / "train.jsonl", args.train_limit)
    test = load_jsonl(HERE / "data" / "test.jsonl")
    trainer = Trainer(algorithm=algorithm, n_runners=args.runners, strategy="inprocess")
    trainer.fit(calc_agent, train_dataset=train, val_dataset=test)
    for entry in algorithm.history:
        reward = entry.get("training/reward", entry.get("val/reward"))
        print(f"{entry['kind']:>5} step {entry['step']:>3}: reward {reward:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
