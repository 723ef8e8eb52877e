"""An agent and an algorithm for the Trainer test; module level so that runner processes can import them."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import agentlightning as agl
import anyio
import openai
from agentlightning.algorithm import Algorithm, with_llm_proxy, with_store


@agl.rollout
def proxy_agent(task: str, llm: agl.LLM) -> float:
    """Knows nothing of rollouts: it only uses the base URL of the LLM resource it is given."""
    client = openai.OpenAI(base_url=llm.get_base_url(), api_key="agent", max_retries=0, timeout=60)
    reply = client.chat.completions.create(model=llm.model, messages=[{"role": "user", "content": task}])
    streamed = client.chat.completions.create(
        model=llm.model, messages=[{"role": "user", "content": task + " again"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    return float(reply.choices[0].message.content == f"echo: {task}" and text == f"echo: {task} again")


class ProxyAlgorithm(Algorithm):
    """Publishes the proxy as ``main_llm``, runs every task once, and keeps the finished rollouts."""

    def __init__(self) -> None:
        super().__init__()
        self.finished: List[Any] = []
        self.resource: Optional[Dict[str, Any]] = None

    @with_llm_proxy(required=True)
    @with_store
    async def run(self, store: Any, llm_proxy: Any, train_dataset: Any = None, val_dataset: Any = None) -> None:
        resource = llm_proxy.as_resource()
        self.resource = {"type": type(resource).__name__, "endpoint": resource.endpoint}
        update = await store.add_resources({"main_llm": resource})
        rollouts = [await store.enqueue_rollout(task, resources_id=update.resources_id) for task in train_dataset]
        ids = [r.rollout_id for r in rollouts]
        with anyio.fail_after(120):
            while len(self.finished) < len(ids):
                self.finished = await store.wait_for_rollouts(rollout_ids=ids, timeout=1.0)
