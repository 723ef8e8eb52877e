"""Step 4: serve the fine-tuned student and evaluate it on the held-out split with ``agl eval``.

    python evaluate.py runs/student.pt --data data/val.jsonl

Starts the torch plugin's OpenAI-compatible policy server for the checkpoint, writes its resources to a JSON file,
runs ``agl eval agentlightning_torch.quickstart.agent:keyword_agent --data ... --resources ...`` (greedy decoding),
prints its summary and stops the server.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile


def main() -> int:
    import torch
    from agentlightning.types.resources import LLM
    from agentlightning.types.serialization import resources_to_dict
    from agentlightning_torch.policy import build_policy
    from agentlightning_torch.server import PolicyServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", required=True)
    parser.add_argument("--json", action="store_true", help="print agl eval's summary as JSON")
    args = parser.parse_args()
    state = torch.load(args.checkpoint, weights_only=False)
    policy = build_policy(model_path=state["model_path"], **state["model_config"])
    policy.load_state_dict(state["model"])
    server = PolicyServer(policy, model_name="student").start()
    try:
        llm = LLM(endpoint=server.endpoint, model="student", sampling_parameters={"temperature": 0.0, "max_tokens": 3})
        with tempfile.TemporaryDirectory() as directory:
            resources = os.path.join(directory, "student.json")
            with open(resources, "w", encoding="utf-8") as f:
                json.dump(resources_to_dict({"main_llm": llm}), f)
            command = [sys.executable, "-c", "from agentlightning.cli import main; main()", "eval",
                       "agentlightning_torch.quickstart.agent:keyword_agent", "--data", args.data,
                       "--resources", resources, *(["--json"] if args.json else [])]  # fmt: skip
            return subprocess.run(command, check=False).returncode
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
