"""Test helpers: the vLLM-like backend's behaviour, a store that is down, waiting for the proxy's spans (delivered
asynchronously) and the token ids the fake backend produces."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Sequence

import anyio
from agentlightning.store import StoreUnavailableError
from agentlightning.testing.openai_server import (
    ErrorReply,
    OpenAITestServer,
    Reply,
    ToolCall,
    echo_handler,
    fake_tokenize,
    render_prompt,
)
from agentlightning.types.tracer import Span
from agentlightning_memory import InMemoryLightningStore


async def proxy_spans(store: Any, rollout_id: str, attempt_id: str, calls: int, timeout: float = 20.0) -> List[Any]:
    """The spans of ``calls`` proxied calls of one attempt, waiting (bounded) for their delivery."""
    spans: Sequence[Any] = []
    with anyio.move_on_after(timeout):
        while True:
            spans = list(await store.query_spans(rollout_id, attempt_id))
            if sum(s.name == "litellm_request" for s in spans) >= calls:
                return list(spans)
            await anyio.sleep(0.02)
    raise AssertionError(f"expected {calls} calls recorded, found {[s.name for s in spans]}")


def roots(spans: Sequence[Any]) -> List[Any]:
    return [s for s in spans if s.name == "litellm_request"]


def expected_chat_ids(messages: List[Dict[str, Any]]) -> tuple[List[int], List[int]]:
    """(prompt ids, response ids) the echoing backend returns for a chat call."""
    users = [m for m in messages if m["role"] == "user"]
    return fake_tokenize(render_prompt({"messages": messages})), fake_tokenize("echo: " + users[-1]["content"])


def expected_text_ids(prompt: str) -> tuple[List[int], List[int]]:
    return fake_tokenize(prompt), fake_tokenize("echo: " + prompt)


def backend_handler(request: Dict[str, Any]) -> Any:
    """Echoes, except for a few commands in the last message: ``!status N``, ``!context``, ``!slow``."""
    messages = request.get("messages") or []
    text = str(messages[-1].get("content") if messages else request.get("prompt", ""))
    if text.startswith("!status "):
        status = int(text.split()[1])
        return ErrorReply(status, f"backend says {status}", "rate_limit_error" if status == 429 else "server_error")
    if text == "!context":
        return ErrorReply(
            400,
            "This model's maximum context length is 16 tokens. However, you requested 99 tokens.",
            "BadRequestError",
            "context_length_exceeded",
        )
    if text == "!slow":
        time.sleep(3)
    if text == "!tool":
        return Reply(tool_calls=[ToolCall("f", {"x": 1})])
    return echo_handler(request)


def model_list(backend: OpenAITestServer, name: str = "policy") -> list:
    return [
        {
            "model_name": name,
            "litellm_params": {"model": "hosted_vllm/test-model", "api_base": backend.base_url, "api_key": "none"},
        }
    ]


class FlakyStore(InMemoryLightningStore):
    """A memory store whose span writes and sequence ids fail ``failures`` times first (a store that is down)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailableError("store is down")

    async def add_many_spans(self, spans: Sequence[Span]) -> Sequence[Span]:
        self._maybe_fail()
        return await super().add_many_spans(spans)

    async def get_next_span_sequence_id(self, rollout_id: str, attempt_id: str) -> int:
        self._maybe_fail()
        return await super().get_next_span_sequence_id(rollout_id, attempt_id)
