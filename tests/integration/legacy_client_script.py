"""A v0.1 client in upstream's legacy example style: a LitAgent with ``training_rollout(task, rollout_id, resources)``
and ``Trainer(n_workers=2, max_tasks=2).fit_v0(agent, url)``. The model is the local OpenAI-compatible test server
at ``OPENAI_API_BASE``.

    python legacy_client_script.py http://127.0.0.1:PORT
"""

from __future__ import annotations

import os
import sys
from typing import Any

from agentlightning.litagent import LitAgent
from agentlightning.trainer import Trainer
from openai import OpenAI


class SimpleAgent(LitAgent[Any]):
    def training_rollout(self, task, rollout_id, resources):  # type: ignore[no-untyped-def, override]
        client = OpenAI(api_key="test", base_url=os.environ["OPENAI_API_BASE"])
        result = client.chat.completions.create(
            model="gpt-4.1-mini",
            messages=[
                {"role": "system", "content": resources["system_prompt"].template},
                {"role": "user", "content": task["prompt"]},
            ],
        )
        client.close()
        answer = result.choices[0].message.content or ""
        return float(len(resources["system_prompt"].template)) if answer.startswith("echo:") else -1.0


if __name__ == "__main__":
    Trainer(n_workers=2, max_tasks=2, tracer="dummy", progress=False).fit_v0(SimpleAgent(), sys.argv[1])
