"""Triplets from the spans an LLM proxy records (LiteLLM ``raw_gen_ai_request`` / ``litellm_request``).

Experimental, like upstream's: calls and rewards are ordered by ``sequence_id`` only.
"""

from __future__ import annotations

import ast
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

from agentlightning.emitter.reward import get_reward_value
from agentlightning.types.core import Triplet
from agentlightning.types.tracer import Span

from .base import as_spans
from .triplet import TraceToTripletBase

__all__ = ["LlmProxyTraceToTriplet"]

logger = logging.getLogger(__name__)


def _ids(value: Any) -> Optional[List[int]]:
    """A token-id list from a list, a tuple, or their string form; a list of lists gives its first list."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return None
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
        value = value[0]
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    return None


class LlmProxyTraceToTriplet(TraceToTripletBase):
    """One triplet per proxied LLM call with token ids; each reward goes to the latest earlier unrewarded call."""

    def _call(self, span: Span) -> Optional[Tuple[List[int], List[int], Optional[str]]]:
        a = span.attributes
        if span.name == "raw_gen_ai_request":
            prompt = _ids(a.get("llm.hosted_vllm.prompt_token_ids"))
            response = _ids(a.get("llm.hosted_vllm.response_token_ids"))
            if not response:
                choices = a.get("llm.hosted_vllm.choices")
                if isinstance(choices, str):
                    try:
                        choices = ast.literal_eval(choices)
                    except (ValueError, SyntaxError):
                        choices = None
                if isinstance(choices, (list, tuple)) and choices and isinstance(choices[0], dict):
                    response = _ids(choices[0].get("token_ids"))
        elif span.name == "litellm_request":
            prompt, response = _ids(a.get("prompt_token_ids")), _ids(a.get("response_token_ids"))
        else:
            return None
        if not prompt or not response:
            return None
        request_id = a.get("gen_ai.response.id") or a.get("llm.hosted_vllm.id")
        return prompt, response, str(request_id) if request_id is not None else None

    def adapt(self, source: Sequence[Any]) -> List[Triplet]:
        spans = sorted(as_spans(source), key=lambda s: (s.sequence_id, s.start_time or 0.0))
        calls: List[Dict[str, Any]] = []
        seen_ids = set()
        rewards: List[Tuple[int, float]] = []
        for span in spans:
            call = self._call(span)
            if call is not None:
                prompt, response, request_id = call
                if request_id is not None and request_id in seen_ids:
                    continue
                if request_id is not None:
                    seen_ids.add(request_id)
                calls.append({"seq": span.sequence_id, "prompt": prompt, "response": response, "id": request_id})
                continue
            value = get_reward_value(span)
            if value is not None:
                rewards.append((span.sequence_id, value))
        assigned: Dict[int, float] = {}
        for reward_seq, value in rewards:
            for index in range(len(calls) - 1, -1, -1):
                if calls[index]["seq"] < reward_seq and index not in assigned:
                    assigned[index] = value
                    break
        return [
            Triplet(
                prompt={"token_ids": c["prompt"]},
                response={"token_ids": c["response"]},
                reward=assigned.get(i),
                metadata={"response_id": c["id"]},
            )
            for i, c in enumerate(calls)
        ]
