"""Publishing a served policy's weights as a resources version (shared by GRPO and SFT)."""

from __future__ import annotations

from typing import Any

from agentlightning.types.resources import ProxyLLM

__all__ = ["policy_llm", "publish_policy"]


def policy_llm(server: Any, policy: Any, version: int, *, temperature: float, max_tokens: int) -> ProxyLLM:
    """The resource agents use to reach ``policy`` at ``version`` through its :class:`PolicyServer`."""
    return ProxyLLM(
        endpoint=server.endpoint,
        model=f"{policy.name}@v{version}",
        sampling_parameters={"temperature": temperature, "max_tokens": max_tokens},
    )


async def publish_policy(
    store: Any, server: Any, policy: Any, version: int, *, resource_name: str, temperature: float, max_tokens: int
) -> str:
    """Serve ``version`` from now on and publish it as the latest resources (new rollouts use it); its id."""
    server.version = version
    llm = policy_llm(server, policy, version, temperature=temperature, max_tokens=max_tokens)
    update = await store.add_resources({resource_name: llm})
    return str(update.resources_id)
