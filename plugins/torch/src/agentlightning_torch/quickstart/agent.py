"""The quickstart agent: ordinary OpenAI-client code. It asks the model for the keyword's category and returns the
reward (the runner records a returned number as the rollout's reward)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from agentlightning.litagent import rollout
from agentlightning.types.resources import LLM

from .task import score_answer

__all__ = ["keyword_agent"]

_POOLS: Dict[int, Any] = {}
_N_POOLS = 32


def _http_client() -> Any:
    """An HTTP client for this rollout, from a round-robin set of small connection pools per event loop.

    Short-lived OpenAI clients stay cheap when they share pools; the pools are small because httpx checks every
    pooled connection on each request (one large pool makes each request cost O(connections)). They share one SSL
    context: building one loads the CA bundle, which for 32 clients cost more than a second of the runner's start."""
    import asyncio
    import ssl

    try:  # the HTTP library the installed openai client is built on (openai 3 uses httpx2, earlier ones httpx)
        import httpx2 as httpx
    except ImportError:
        import httpx  # type: ignore[no-redef]

    loop_id = id(asyncio.get_running_loop())
    entry = _POOLS.get(loop_id)
    if entry is None:
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
        context = ssl.create_default_context()
        clients = [httpx.AsyncClient(limits=limits, timeout=60.0, verify=context) for _ in range(_N_POOLS)]
        entry = _POOLS[loop_id] = [clients, 0]
    clients, turn = entry
    entry[1] = (turn + 1) % len(clients)
    return clients[turn]


@rollout
async def keyword_agent(task: Dict[str, Any], llm: LLM) -> float:
    """``task = {"keyword": "pacq", "answer": "C"}``; the model should reply with the category letter."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=llm.endpoint, api_key=llm.api_key or "unused", http_client=_http_client())
    params = dict(llm.sampling_parameters)
    response = await client.chat.completions.create(
        model=llm.model,
        messages=[{"role": "user", "content": task["keyword"]}],
        temperature=params.get("temperature", 1.0),
        max_tokens=params.get("max_tokens", 4),
    )
    choice = response.choices[0]
    answer: Optional[str] = choice.message.content
    return score_answer(answer, task["answer"], choice.finish_reason)
