"""The span a served chat completion leaves in the store: the shape LiteLLM's proxy records in front of vLLM.

One span per request, named ``raw_gen_ai_request`` (what ``LlmProxyTraceToTriplet`` reads), carrying:

- ``llm.hosted_vllm.prompt_token_ids`` (stringified list), ``llm.hosted_vllm.response_token_ids`` (stringified list
  of lists, one per choice) and ``llm.hosted_vllm.choices`` (stringified list of choice dicts with ``token_ids``);
- plain ``prompt_token_ids`` / ``response_token_ids`` (first choice) lists, which ``TracerTraceToTriplet`` reads;
- ``gen_ai.prompt.<i>.*``, ``gen_ai.completion.<i>.*``, ``gen_ai.request.*``, ``gen_ai.response.*`` (OpenTelemetry
  GenAI conventions) for message-level adapters;
- the rollout, attempt and sequence ids, as store fields and as resource attributes.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from agentlightning.semconv import LightningResourceAttributes
from agentlightning.types.tracer import OtelResource, Span, TraceStatus

__all__ = ["LLM_SPAN_NAME", "ServedCall", "call_attributes", "call_span"]

LLM_SPAN_NAME = "raw_gen_ai_request"
POLICY_VERSION_ATTRIBUTE = "agentlightning.torch.policy_version"


class ServedCall:
    """What the server knows about one chat completion once it is generated."""

    __slots__ = (
        "choices",
        "end_time",
        "messages",
        "model",
        "params",
        "policy_version",
        "prompt_token_ids",
        "response_id",
        "start_time",
    )

    def __init__(
        self,
        *,
        response_id: str,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        prompt_token_ids: List[int],
        choices: List[Dict[str, Any]],
        policy_version: int,
        start_time: float,
        end_time: Optional[float] = None,
    ) -> None:
        self.response_id = response_id
        self.model = model
        self.messages = messages
        self.params = params
        self.prompt_token_ids = prompt_token_ids
        self.choices = choices  # {"index", "text", "token_ids", "finish_reason"}
        self.policy_version = policy_version
        self.start_time = start_time
        self.end_time = end_time if end_time is not None else time.time()


def call_attributes(call: ServedCall) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {
        "gen_ai.system": "agentlightning-torch",
        "gen_ai.request.model": call.model,
        "gen_ai.response.model": call.model,
        "gen_ai.response.id": call.response_id,
        "llm.hosted_vllm.id": call.response_id,
        "llm.hosted_vllm.prompt_token_ids": str(call.prompt_token_ids),
        "llm.hosted_vllm.response_token_ids": str([c["token_ids"] for c in call.choices]),
        "llm.hosted_vllm.choices": str(
            [
                {
                    "index": c["index"],
                    "finish_reason": c["finish_reason"],
                    "message": {"role": "assistant", "content": c["text"]},
                    "token_ids": c["token_ids"],
                }
                for c in call.choices
            ]
        ),
        "prompt_token_ids": list(call.prompt_token_ids),
        "response_token_ids": list(call.choices[0]["token_ids"]) if call.choices else [],
        POLICY_VERSION_ATTRIBUTE: call.policy_version,
    }
    for key in ("max_tokens", "temperature", "top_p", "n"):
        if call.params.get(key) is not None:
            attrs[f"gen_ai.request.{key}"] = call.params[key]
    for i, message in enumerate(call.messages):
        attrs[f"gen_ai.prompt.{i}.role"] = str(message.get("role", ""))
        content = message.get("content")
        attrs[f"gen_ai.prompt.{i}.content"] = content if isinstance(content, str) else str(content)
    for c in call.choices:
        attrs[f"gen_ai.completion.{c['index']}.role"] = "assistant"
        attrs[f"gen_ai.completion.{c['index']}.content"] = c["text"]
        attrs[f"gen_ai.completion.{c['index']}.finish_reason"] = c["finish_reason"]
    prompt_tokens = len(call.prompt_token_ids)
    completion_tokens = sum(len(c["token_ids"]) for c in call.choices)
    attrs["gen_ai.usage.prompt_tokens"] = prompt_tokens
    attrs["gen_ai.usage.completion_tokens"] = completion_tokens
    return attrs


def call_span(call: ServedCall, rollout_id: str, attempt_id: str, sequence_id: int) -> Span:
    """The stored span of ``call``, tagged with its rollout, attempt and sequence id."""
    return Span.from_attributes(
        attributes=call_attributes(call),
        rollout_id=rollout_id,
        attempt_id=attempt_id,
        sequence_id=sequence_id,
        name=LLM_SPAN_NAME,
        start_time=call.start_time,
        end_time=call.end_time,
        status=TraceStatus(status_code="OK"),
        resource=OtelResource(
            attributes={
                LightningResourceAttributes.ROLLOUT_ID: rollout_id,
                LightningResourceAttributes.ATTEMPT_ID: attempt_id,
                LightningResourceAttributes.SPAN_SEQUENCE_ID: sequence_id,
                LightningResourceAttributes.TRACER_NAME: "agentlightning-torch",
            }
        ),
    )
