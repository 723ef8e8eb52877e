"""Step 3: fine-tune a small model on the exported chat records (``agl export --format messages``).

    python finetune.py runs/teacher.jsonl --out runs/student.pt

The student is the quickstart's tiny transformer over characters (CPU, seconds); ``--model DIR`` takes a local
Hugging Face causal LM instead, and ``--lora`` trains LoRA adapters of it (peft). Each record's prompt messages are
encoded with the student's chat template and its answer with the student's tokenizer; the loss covers the answer
only.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict

MODEL_CONFIG: Dict[str, Any] = {"d_model": 64}


def main() -> None:
    import torch
    from agentlightning.training import load_sft_dataset
    from agentlightning_torch.policy import build_policy
    from agentlightning_torch.quickstart.task import ALPHABET
    from agentlightning_torch.sft import apply_lora, examples_from_records, fine_tune

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("records", help="a messages (or openai-chat) export")
    parser.add_argument("--out", required=True, help="where the student checkpoint goes")
    parser.add_argument("--model", default=None, help="a local Hugging Face model directory (default: tiny model)")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters (with --model)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = {} if args.model else {"alphabet": ALPHABET, **MODEL_CONFIG}
    policy = build_policy(model_path=args.model, seed=args.seed, **config)
    if args.lora:
        apply_lora(policy, {})
    examples = examples_from_records(policy, load_sft_dataset(args.records))
    if not examples:
        raise SystemExit(f"{args.records} holds no chat record ending in an assistant answer")
    losses = fine_tune(policy, examples, epochs=args.epochs, learning_rate=args.learning_rate, seed=args.seed)
    torch.save({"model": policy.state_dict(), "model_path": args.model, "model_config": config}, args.out)
    print(json.dumps({"examples": len(examples), "first_loss": losses[0], "last_loss": losses[-1], "out": args.out}))


if __name__ == "__main__":
    main()
