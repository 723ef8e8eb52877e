"""A trainer backend that behaves like verl's from the loop's side, with only the GPU part faked.

Its "vLLM server" is core's real OpenAI-compatible test server (token ids via ``return_token_ids``); it refuses
requests while the backend sleeps, as a vLLM server whose memory was freed would. ``train_step`` records the
batches it gets; checkpoints are JSON files under ``trainer.default_local_dir`` named like verl's
(``global_step_<n>`` plus ``latest_checkpointed_iteration.txt``).
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
from typing import Any, Dict, List, Mapping, Optional

from agentlightning.testing.openai_server import ErrorReply, OpenAITestServer
from agentlightning.training import PaddedBatch


def arithmetic_handler(correct_rate: float = 0.5, seed: int = 0) -> Any:
    """Answers ``What is A + B?`` right with probability ``correct_rate``, else off by one."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def handler(request: Dict[str, Any]) -> str:
        users = [m for m in request.get("messages") or [] if m.get("role") == "user"]
        text = str(users[0].get("content")) if users else ""
        match = re.search(r"(-?\d+)\s*\+\s*(-?\d+)", text)
        if not match:
            return "I do not know."
        with lock:
            right = rng.random() < correct_rate
        value = int(match.group(1)) + int(match.group(2)) + (0 if right else 1)
        return f"The answer is {value}."

    return handler


class FakeVerlTrainer:
    instances: List[FakeVerlTrainer] = []

    def __init__(self, config: Dict[str, Any], handler: Any = None) -> None:
        self.config = config
        self.model_name = str(config["actor_rollout_ref"]["model"]["path"]).rstrip("/").split("/")[-1]
        self.pad_token_id = 0
        self.awake = False
        self.events: List[str] = []
        self.batches: List[PaddedBatch] = []
        self.advantages: List[Optional[List[float]]] = []
        self.steps: List[int] = []
        inner = handler or arithmetic_handler()

        def gated(request: Dict[str, Any]) -> Any:
            if not self.awake:
                return ErrorReply(503, "rollout server is asleep")
            return inner(request)

        self.server = OpenAITestServer(gated, model=self.model_name)
        self.directory = str(config["trainer"]["default_local_dir"])
        FakeVerlTrainer.instances.append(self)

    # -- TrainerBackend ----------------------------------------------------------------------------------------

    def start(self) -> List[str]:
        self.events.append("start")
        self.server.start()
        self.address = f"127.0.0.1:{self.server.port}"
        return [self.address]

    def load_checkpoint(self) -> int:
        self.events.append("load_checkpoint")
        marker = os.path.join(self.directory, "latest_checkpointed_iteration.txt")
        if self.config["trainer"]["resume_mode"] == "disable" or not os.path.exists(marker):
            return 0
        with open(marker, encoding="utf-8") as handle:
            step = int(handle.read().strip())
        with open(os.path.join(self.directory, f"global_step_{step}", "state.json"), encoding="utf-8") as handle:
            assert json.load(handle)["step"] == step
        return step

    def wake_up(self) -> None:
        self.events.append("wake_up")
        self.awake = True

    def sleep(self) -> None:
        self.events.append("sleep")
        self.awake = False

    def train_step(self, batch: PaddedBatch, advantages: Optional[List[float]], step: int) -> Mapping[str, float]:
        assert not self.awake, "verl trains only after the rollout servers went to sleep"
        self.events.append(f"train_step:{step}")
        self.batches.append(batch)
        self.advantages.append(advantages)
        self.steps.append(step)
        kept = [i for i, d in enumerate(batch.drop) if not d]
        return {"actor/pg_loss": 0.0, "training/n_rows_trained": float(len(kept))}

    def save_checkpoint(self, step: int) -> None:
        self.events.append(f"save_checkpoint:{step}")
        folder = os.path.join(self.directory, f"global_step_{step}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "state.json"), "w", encoding="utf-8") as handle:
            json.dump({"step": step}, handle)
        with open(os.path.join(self.directory, "latest_checkpointed_iteration.txt"), "w", encoding="utf-8") as handle:
            handle.write(str(step))

    def shutdown(self) -> None:
        self.events.append("shutdown")
        self.server.stop()
