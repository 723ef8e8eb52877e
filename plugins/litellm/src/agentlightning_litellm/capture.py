"""What one proxied call records: the request, the final response (streams accumulated), and its spans.

Each call becomes two spans sharing one sequence id (upstream's shape, read by ``LlmProxyTraceToTriplet`` and by
``TracerTraceToTriplet(llm_call_match="litellm_request")``):

- ``litellm_request`` (root): the openai instrumentation's attributes (``gen_ai.prompt.*``, ``gen_ai.completion.*``,
  ``gen_ai.usage.*``, ``gen_ai.response.id``, ...) plus ``prompt_token_ids`` / ``response_token_ids`` (choice 0) and
  ``logprobs.content`` when the backend returned them, ``litellm.model`` / ``litellm.provider`` and
  ``agentlightning.proxy.api``;
- ``raw_gen_ai_request`` (child): ``llm.<provider>.id``, ``llm.<provider>.prompt_token_ids`` and
  ``llm.<provider>.response_token_ids``, as LiteLLM's own OpenTelemetry integration names them.

A failed call has status ``ERROR``, ``error.type`` and ``http.response.status_code``, and an ``exception`` event.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Optional

import attrs
from agentlightning.instrumentation.litellm import restore_token_ids
from agentlightning.instrumentation.openai import StreamAccumulator, request_attributes, response_attributes
from agentlightning.types.tracer import Event, Span, TraceStatus, _random_span_id, _random_trace_id

__all__ = [
    "CallError",
    "CallRecord",
    "StreamCollector",
    "call_spans",
    "restore_token_ids",
    "ROOT_SPAN_NAME",
    "RAW_SPAN_NAME",
]

ROOT_SPAN_NAME = "litellm_request"
RAW_SPAN_NAME = "raw_gen_ai_request"


@attrs.define
class CallError:
    """What the agent was answered when the call failed."""

    status: int
    type: str
    message: str


@attrs.define
class CallRecord:
    """One call through the proxy, filled in as it runs."""

    kind: str
    request: Dict[str, Any]
    model: str = ""
    provider: str = ""
    start_time: float = attrs.field(factory=time.time)
    end_time: Optional[float] = None
    response: Optional[Dict[str, Any]] = None
    error: Optional[CallError] = None


def _int_list(value: Any) -> Optional[List[int]]:
    if isinstance(value, (list, tuple)) and value and set(map(type, value)) == {int}:
        return list(value)
    return None


class StreamCollector:
    """Accumulates a stream's chunks (OpenAI chunk dicts, Anthropic or Responses events) into one final response."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.prompt_token_ids: Optional[List[int]] = None
        self.prompt_ids_sent = False
        self.raw_response_ids: List[int] = []
        self._openai = StreamAccumulator(kind == "chat") if kind in ("chat", "completion") else None
        self._anthropic: Dict[str, Any] = {"content": [], "usage": {}}
        self._final: Optional[Dict[str, Any]] = None
        self.chunks = 0

    def add_raw(self, chunk: Any) -> None:
        """A backend chunk before LiteLLM converted it: the only place vLLM's streamed ``prompt_token_ids`` survive
        (and, for the Anthropic route, where LiteLLM translates the stream, the response token ids)."""
        if not isinstance(chunk, dict):
            return
        choices = [c for c in chunk.get("choices") or [] if isinstance(c, dict)]
        if self.prompt_token_ids is None:
            ids = _int_list(chunk.get("prompt_token_ids"))
            for choice in choices:
                ids = ids or _int_list(choice.get("prompt_token_ids"))
            self.prompt_token_ids = ids
        for choice in choices:
            if (choice.get("index") or 0) == 0:
                self.raw_response_ids.extend(_int_list(choice.get("token_ids")) or [])

    def add_inner_response(self, response: Dict[str, Any]) -> None:
        """The OpenAI-shaped response LiteLLM got before translating it (Anthropic route, not streamed)."""
        choices = response.get("choices") or []
        self.prompt_token_ids = _int_list(response.get("prompt_token_ids"))
        self.raw_response_ids = (_int_list(choices[0].get("token_ids")) if choices else None) or []

    def token_ids(self) -> Dict[str, List[int]]:
        """``prompt_token_ids`` / ``response_token_ids`` seen below LiteLLM's translation, for the Anthropic route."""
        out: Dict[str, List[int]] = {}
        if self.prompt_token_ids:
            out["prompt_token_ids"] = self.prompt_token_ids
        if self.raw_response_ids:
            out["response_token_ids"] = self.raw_response_ids
        return out

    def add(self, event: Dict[str, Any]) -> None:
        self.chunks += 1
        if self._openai is not None:
            self._openai.add(event)
            return
        etype = event.get("type")
        if self.kind == "responses":
            if etype in ("response.completed", "response.incomplete", "response.failed") and event.get("response"):
                self._final = event["response"]
            return
        a = self._anthropic
        if etype == "message_start":
            message = event.get("message") or {}
            a.update({k: message.get(k) for k in ("id", "model", "role")})
            a["usage"].update(message.get("usage") or {})
        elif etype == "content_block_start":
            a["content"].append(dict(event.get("content_block") or {}))
        elif etype == "content_block_delta" and a["content"]:
            delta, block = event.get("delta") or {}, a["content"][-1]
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + (delta.get("text") or "")
            elif delta.get("type") == "input_json_delta":
                block["partial_json"] = block.get("partial_json", "") + (delta.get("partial_json") or "")
        elif etype == "message_delta":
            a["stop_reason"] = (event.get("delta") or {}).get("stop_reason")
            a["usage"].update(event.get("usage") or {})

    def response(self) -> Optional[Dict[str, Any]]:
        if self._openai is not None:
            out = self._openai.response()
            if out.get("prompt_token_ids") is None:
                out["prompt_token_ids"] = self.prompt_token_ids
            if out["choices"] and not out["choices"][0].get("token_ids") and self.raw_response_ids:
                out["choices"][0]["token_ids"] = list(self.raw_response_ids)  # LiteLLM dropped them from the chunks
            return out
        if self.kind == "responses":
            return self._final
        for block in self._anthropic["content"]:
            raw = block.pop("partial_json", None)
            if raw:
                try:
                    block["input"] = json.loads(raw)
                except ValueError:
                    block["input"] = raw
        return self._anthropic


# -- attributes of the other APIs ------------------------------------------------------------------------------


def _other_api_attributes(record: CallRecord) -> Dict[str, Any]:
    """Anthropic and Responses calls in the shared LLM span vocabulary, with the backend's token ids if recorded."""
    from agentlightning.instrumentation import anthropic as anthropic_api
    from agentlightning.instrumentation import openai_responses

    if record.kind == "anthropic":
        out = anthropic_api.request_attributes(record.request)
        if record.response:
            out.update(anthropic_api.response_attributes(record.response))
    else:
        out = openai_responses.responses_request_attributes(record.request)
        if record.response:
            out.update(openai_responses.responses_response_attributes(record.response))
    ids = {k: _int_list((record.response or {}).get(k)) for k in ("prompt_token_ids", "response_token_ids")}
    if ids["prompt_token_ids"] and ids["response_token_ids"]:
        out.update(ids)
        out.pop("agentlightning.token_ids", None)
    return out


def _call_attributes(record: CallRecord) -> Dict[str, Any]:
    if record.kind in ("chat", "completion"):
        chat = record.kind == "chat"
        out = request_attributes(record.request, chat)
        if record.response is not None:
            out.update(response_attributes(record.response, chat))
    else:
        out = _other_api_attributes(record)
    out["gen_ai.system"] = "litellm"
    out["gen_ai.request.streaming"] = bool(record.request.get("stream"))
    out["agentlightning.proxy.api"] = record.kind
    if record.model:
        out["litellm.model"] = record.model
    if record.provider:
        out["litellm.provider"] = record.provider
    return out


def call_spans(record: CallRecord, rollout_id: str, attempt_id: str, sequence_id: int) -> List[Span]:
    """The ``litellm_request`` span of a finished call and, when it succeeded, its ``raw_gen_ai_request`` child."""
    end = record.end_time or time.time()
    trace_id = _random_trace_id()
    attributes = _call_attributes(record)
    events: List[Event] = []
    if record.error is not None:
        status = TraceStatus(status_code="ERROR", description=record.error.message)
        attributes["error.type"] = record.error.type
        attributes["http.response.status_code"] = record.error.status
        events.append(
            Event(
                name="exception",
                attributes={"exception.type": record.error.type, "exception.message": record.error.message},
                timestamp=end,
            )
        )
    else:
        status = TraceStatus(status_code="OK")
        attributes["http.response.status_code"] = 200
    root = Span.from_attributes(
        attributes=attributes,
        rollout_id=rollout_id,
        attempt_id=attempt_id,
        sequence_id=sequence_id,
        name=ROOT_SPAN_NAME,
        trace_id=trace_id,
        start_time=record.start_time,
        end_time=end,
        status=status,
    )
    root.events.extend(events)
    spans = [root]
    if record.error is None:
        prefix = f"llm.{record.provider or 'litellm'}"
        raw: Dict[str, Any] = {}
        if attributes.get("gen_ai.response.id") is not None:
            raw[f"{prefix}.id"] = attributes["gen_ai.response.id"]
        if attributes.get("gen_ai.response.model") is not None:
            raw[f"{prefix}.model"] = attributes["gen_ai.response.model"]
        for key in ("prompt_token_ids", "response_token_ids"):
            if key in attributes:
                raw[f"{prefix}.{key}"] = attributes[key]
        spans.append(
            Span.from_attributes(
                attributes=raw,
                rollout_id=rollout_id,
                attempt_id=attempt_id,
                sequence_id=sequence_id,
                name=RAW_SPAN_NAME,
                trace_id=trace_id,
                span_id=_random_span_id(),
                parent_id=root.span_id,
                start_time=record.start_time,
                end_time=end,
                status=TraceStatus(status_code="OK"),
            )
        )
    return spans
