"""A real, local OpenAI-compatible HTTP server for tests and examples (standard library only).

    from agentlightning.testing.openai_server import OpenAITestServer, Reply, ToolCall

    def handler(request: dict):            # the JSON body the client sent
        if request.get("tools"):
            return Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})])
        return "It is sunny."              # plain text: one assistant message

    with OpenAITestServer(handler) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="test")
        client.chat.completions.create(model="m", messages=[...], extra_body={"return_token_ids": True})
        srv.requests[-1].body               # what the server received

Endpoints: ``POST /v1/chat/completions`` (``stream`` via server-sent events, ``stream_options.include_usage``),
``POST /v1/completions``, ``POST /v1/responses`` (OpenAI Responses API), ``POST /v1/messages`` (Anthropic Messages
API), ``POST /v1beta/models/<model>:generateContent`` and ``:streamGenerateContent`` (Gemini, for ``google-genai``
with ``http_options={"base_url": srv.root_url}``), ``GET /v1/models``; all stream when asked, all answer tool calls
and :attr:`Reply.reasoning`. The handler gets the request body of whichever protocol; :func:`request_messages`
reads any of them as chat messages. A handler returns a ``str``, a :class:`Reply`, an :class:`ErrorReply`
(an HTTP error status with OpenAI's error body), or a ``dict`` sent back verbatim as the JSON response. Without a
handler the server echoes the last user message. A handler that raises becomes an HTTP 500.

Tokenization is fake and deterministic: :func:`fake_tokenize` maps text to its UTF-8 bytes. When the request has
``"return_token_ids": true`` (``extra_body`` in the openai client) responses carry vLLM's fields: ``prompt_token_ids``
on the response (on the first chunk when streaming) and ``token_ids`` on each choice (per chunk when streaming).
Usage numbers are the lengths of those token lists.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import attrs

__all__ = [
    "OpenAITestServer",
    "Reply",
    "ToolCall",
    "ErrorReply",
    "RecordedRequest",
    "ScriptedHandler",
    "Handler",
    "echo_handler",
    "fake_tokenize",
    "fake_detokenize",
    "render_prompt",
    "request_messages",
]


@attrs.define
class ToolCall:
    """A function call the assistant asks for; ``arguments`` may be a dict (JSON-encoded for you) or a string."""

    name: str
    arguments: Union[str, Dict[str, Any]] = attrs.field(factory=dict)
    id: Optional[str] = None

    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@attrs.define(kw_only=True)
class Reply:
    """One assistant answer: text, tool calls, or both. ``n`` choices repeat it."""

    content: Optional[str] = None
    tool_calls: List[ToolCall] = attrs.field(factory=list)
    finish_reason: Optional[str] = None
    logprobs: bool = False
    reasoning: Optional[str] = None
    """Reasoning text: a ``reasoning`` output item (Responses), a ``thinking`` block (Anthropic), a thought part
    (Gemini); chat completions leave it out."""

    def resolved_finish_reason(self) -> str:
        return self.finish_reason or ("tool_calls" if self.tool_calls else "stop")


@attrs.define
class ErrorReply:
    """An HTTP error in OpenAI's shape: ``{"error": {"message", "type", "code"}}``."""

    status: int
    message: str = "error"
    type: str = "invalid_request_error"
    code: Optional[str] = None


@attrs.define
class RecordedRequest:
    """A request the server received."""

    method: str
    path: str
    headers: Dict[str, str]
    body: Any


HandlerResult = Union[str, Reply, ErrorReply, Dict[str, Any]]
Handler = Callable[[Dict[str, Any]], HandlerResult]


def fake_tokenize(text: str) -> List[int]:
    """Deterministic fake tokenization: the UTF-8 bytes of ``text``."""
    return list(text.encode("utf-8"))


def fake_detokenize(token_ids: Sequence[int]) -> str:
    return bytes(token_ids).decode("utf-8", errors="replace")


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else json.dumps(content)


def _responses_messages(request: Dict[str, Any]) -> List[Dict[str, Any]]:
    messages: List[Dict[str, Any]] = []
    if request.get("instructions"):
        messages.append({"role": "system", "content": request["instructions"]})
    items = request.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    for item in items or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type") or "message"
        if kind == "message":
            messages.append({"role": item.get("role", "user"), "content": item.get("content")})
        elif kind == "function_call":
            messages.append({"role": "assistant", "content": json.dumps(item, sort_keys=True)})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "content": item.get("output")})
    return messages


def _gemini_messages(request: Dict[str, Any]) -> List[Dict[str, Any]]:
    messages: List[Dict[str, Any]] = []
    system = request.get("systemInstruction") or request.get("system_instruction")
    if isinstance(system, dict):
        messages.append({"role": "system", "content": system.get("parts")})
    for content in request.get("contents") or []:
        parts = [p if "text" in p else {"text": json.dumps(p, sort_keys=True)} for p in content.get("parts") or []]
        messages.append({"role": content.get("role", "user"), "content": parts})
    return messages


def request_messages(request: Dict[str, Any]) -> List[Dict[str, Any]]:
    """A request's conversation as chat-style messages, whatever its protocol (chat, Anthropic, Responses, Gemini)."""
    if "input" in request:
        return _responses_messages(request)
    if "contents" in request:
        return _gemini_messages(request)
    messages = list(request.get("messages") or [])
    system = request.get("system")  # Anthropic
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return messages


def render_prompt(request: Dict[str, Any]) -> str:
    """The text the fake tokenizer sees for a request: ``role: content`` lines, or the completion prompt."""
    if "input" in request or "contents" in request or "system" in request:
        request = {"messages": request_messages(request)}
    if "messages" in request:
        lines = []
        for message in request.get("messages") or []:
            text = _content_text(message.get("content"))
            if message.get("tool_calls"):
                text += json.dumps(message["tool_calls"], sort_keys=True)
            lines.append(f"{message.get('role', '')}: {text}")
        return "\n".join(lines) + "\nassistant: "
    prompt = request.get("prompt", "")
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


def echo_handler(request: Dict[str, Any]) -> HandlerResult:
    """The default: ``"echo: <last user message>"`` (or of the completion prompt)."""
    if "messages" in request or "input" in request or "contents" in request:
        users = [m for m in request_messages(request) if m.get("role") == "user"]
        return "echo: " + (_content_text(users[-1].get("content")) if users else "")
    return "echo: " + render_prompt(request)


class ScriptedHandler:
    """Answers with ``replies`` in order; after the last one, repeats it (or raises if ``repeat_last=False``)."""

    def __init__(self, replies: Sequence[HandlerResult], *, repeat_last: bool = True) -> None:
        if not replies:
            raise ValueError("ScriptedHandler needs at least one reply")
        self._replies = list(replies)
        self._repeat_last = repeat_last
        self._index = 0
        self._lock = threading.Lock()

    def __call__(self, request: Dict[str, Any]) -> HandlerResult:
        with self._lock:
            if self._index >= len(self._replies) and not self._repeat_last:
                return ErrorReply(500, f"ScriptedHandler ran out of its {len(self._replies)} replies")
            reply = self._replies[min(self._index, len(self._replies) - 1)]
            self._index += 1
            return reply


def _as_reply(result: HandlerResult) -> Union[Reply, ErrorReply, Dict[str, Any]]:
    if isinstance(result, str):
        return Reply(content=result)
    if isinstance(result, (Reply, ErrorReply, dict)):
        return result
    raise TypeError(f"an OpenAITestServer handler must return str, Reply, ErrorReply or dict, not {type(result)}")


class _Builder:
    """Builds OpenAI response bodies for one request."""

    def __init__(self, server: OpenAITestServer, request: Dict[str, Any], reply: Reply, chat: bool) -> None:
        self.request = request
        self.reply = reply
        self.chat = chat
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{server.next_id()}"
        self.created = int(time.time())
        self.model = str(request.get("model") or server.model)
        self.n = int(request.get("n") or 1)
        self.return_ids = bool(request.get("return_token_ids"))
        self.prompt_ids = fake_tokenize(render_prompt(request))
        self.tool_calls: List[Dict[str, Any]] = [
            {
                "id": call.id or f"call_{self.id}_{i}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for i, call in enumerate(reply.tool_calls)
        ]
        text = reply.content or ""
        self.response_ids = fake_tokenize(text + (json.dumps(self.tool_calls) if self.tool_calls else ""))

    def usage(self) -> Dict[str, int]:
        completion = len(self.response_ids) * self.n
        return {
            "prompt_tokens": len(self.prompt_ids),
            "completion_tokens": completion,
            "total_tokens": len(self.prompt_ids) + completion,
        }

    def _logprobs(self) -> Optional[Dict[str, Any]]:
        if not (self.reply.logprobs or self.request.get("logprobs")):
            return None
        return {
            "content": [
                {"token": chr(t) if t < 128 else "?", "logprob": -0.5, "bytes": [t], "top_logprobs": []}
                for t in self.response_ids
            ]
        }

    def body(self) -> Dict[str, Any]:
        choices = []
        for index in range(self.n):
            if self.chat:
                message: Dict[str, Any] = {"role": "assistant", "content": self.reply.content}
                if self.tool_calls:
                    message["tool_calls"] = self.tool_calls
                choice: Dict[str, Any] = {
                    "index": index,
                    "message": message,
                    "finish_reason": self.reply.resolved_finish_reason(),
                    "logprobs": self._logprobs(),
                }
            else:
                choice = {"index": index, "text": self.reply.content or "", "finish_reason": "stop", "logprobs": None}
            if self.return_ids:
                choice["token_ids"] = list(self.response_ids)
            choices.append(choice)
        body: Dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": self.usage(),
        }
        if self.return_ids:
            body["prompt_token_ids"] = list(self.prompt_ids)
        return body

    def chunks(self) -> Iterator[Dict[str, Any]]:
        """Streaming chunks: role, text pieces, one chunk per tool call, the finish reason, and usage if asked."""
        base: Dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
        }
        pieces: List[Dict[str, Any]] = []
        text = self.reply.content or ""
        words = text.split(" ") if text else []
        if self.chat:
            pieces.append({"role": "assistant", "content": ""})
        for i, word in enumerate(words):
            part = word if i == len(words) - 1 else word + " "
            pieces.append({"content": part} if self.chat else {"text": part})
        for i, call in enumerate(self.tool_calls):
            pieces.append({"tool_calls": [{"index": i, **call}]})
        first = True
        for index in range(self.n):
            for delta in pieces:
                choice: Dict[str, Any] = {"index": index, "finish_reason": None, "logprobs": None}
                if self.chat:
                    choice["delta"] = delta
                else:
                    choice["text"] = delta["text"]
                if self.return_ids:
                    if "tool_calls" in delta:
                        ids = fake_tokenize(json.dumps(self.tool_calls)) if delta["tool_calls"][0]["index"] == 0 else []
                    else:
                        ids = fake_tokenize(delta.get("content") or delta.get("text") or "")
                    choice["token_ids"] = ids
                chunk = {**base, "choices": [choice]}
                if first and self.return_ids:
                    chunk["prompt_token_ids"] = list(self.prompt_ids)
                first = False
                yield chunk
            final: Dict[str, Any] = {
                "index": index,
                "finish_reason": self.reply.resolved_finish_reason(),
                "logprobs": None,
            }
            if self.chat:
                final["delta"] = {}
            else:
                final["text"] = ""
            if self.return_ids:
                final["token_ids"] = []
            yield {**base, "choices": [final]}
        if (self.request.get("stream_options") or {}).get("include_usage"):
            yield {**base, "choices": [], "usage": self.usage()}


class _OtherProtocols(_Builder):
    """Bodies and stream events of the Responses API, Anthropic's Messages API and Gemini's generateContent for one
    reply (no token ids: those protocols carry none)."""

    def __init__(self, server: OpenAITestServer, request: Dict[str, Any], reply: Reply) -> None:
        super().__init__(server, request, reply, chat=True)
        self.n = 1
        self.number = self.id.split("-", 1)[1]

    # -- Responses ---------------------------------------------------------------------------------------------

    def _response_items(self) -> List[Dict[str, Any]]:
        items: List[Dict[str, Any]] = []
        if self.reply.reasoning is not None:
            summary = [{"type": "summary_text", "text": self.reply.reasoning}]
            items.append({"type": "reasoning", "id": f"rs_{self.number}", "summary": summary})
        if self.reply.content is not None or not self.tool_calls:
            text = {"type": "output_text", "text": self.reply.content or "", "annotations": []}
            items.append(
                {
                    "type": "message",
                    "id": f"msg_{self.number}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [text],
                }
            )
        for i, call in enumerate(self.tool_calls):
            items.append(
                {
                    "type": "function_call",
                    "id": f"fc_{self.number}_{i}",
                    "call_id": call["id"],
                    "name": call["function"]["name"],
                    "arguments": call["function"]["arguments"],
                    "status": "completed",
                }
            )
        return items

    def responses_body(
        self, status: str = "completed", output: Optional[List[Dict[str, Any]]] = None
    ) -> Dict[str, Any]:
        usage = self.usage()
        return {
            "id": f"resp_{self.number}",
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": self._response_items() if output is None else output,
            "instructions": self.request.get("instructions"),
            "parallel_tool_calls": True,
            "tool_choice": self.request.get("tool_choice") or "auto",
            "tools": self.request.get("tools") or [],
            "text": {"format": {"type": "text"}},
            "temperature": self.request.get("temperature"),
            "top_p": self.request.get("top_p"),
            "metadata": {},
            "error": None,
            "incomplete_details": None,
            "usage": {
                "input_tokens": usage["prompt_tokens"],
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": usage["completion_tokens"],
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage["total_tokens"],
            },
        }

    def responses_events(self) -> Iterator[Dict[str, Any]]:
        seq = itertools.count()
        yield {
            "type": "response.created",
            "sequence_number": next(seq),
            "response": self.responses_body("in_progress", []),
        }
        yield {
            "type": "response.in_progress",
            "sequence_number": next(seq),
            "response": self.responses_body("in_progress", []),
        }
        for index, item in enumerate(self._response_items()):
            base = {"output_index": index, "item_id": item["id"]}
            if item["type"] == "message":
                yield {
                    "type": "response.output_item.added",
                    "sequence_number": next(seq),
                    "output_index": index,
                    "item": {**item, "status": "in_progress", "content": []},
                }
                part = {"type": "output_text", "text": "", "annotations": []}
                yield {
                    "type": "response.content_part.added",
                    "sequence_number": next(seq),
                    **base,
                    "content_index": 0,
                    "part": part,
                }
                text = item["content"][0]["text"]
                for word in _words(text):
                    yield {
                        "type": "response.output_text.delta",
                        "sequence_number": next(seq),
                        **base,
                        "content_index": 0,
                        "delta": word,
                        "logprobs": [],
                    }
                yield {
                    "type": "response.output_text.done",
                    "sequence_number": next(seq),
                    **base,
                    "content_index": 0,
                    "text": text,
                    "logprobs": [],
                }
                yield {
                    "type": "response.content_part.done",
                    "sequence_number": next(seq),
                    **base,
                    "content_index": 0,
                    "part": item["content"][0],
                }
            elif item["type"] == "function_call":
                yield {
                    "type": "response.output_item.added",
                    "sequence_number": next(seq),
                    "output_index": index,
                    "item": {**item, "arguments": "", "status": "in_progress"},
                }
                yield {
                    "type": "response.function_call_arguments.delta",
                    "sequence_number": next(seq),
                    **base,
                    "delta": item["arguments"],
                }
                yield {
                    "type": "response.function_call_arguments.done",
                    "sequence_number": next(seq),
                    **base,
                    "arguments": item["arguments"],
                    "name": item["name"],
                }
            else:
                yield {
                    "type": "response.output_item.added",
                    "sequence_number": next(seq),
                    "output_index": index,
                    "item": item,
                }
            yield {
                "type": "response.output_item.done",
                "sequence_number": next(seq),
                "output_index": index,
                "item": item,
            }
        yield {"type": "response.completed", "sequence_number": next(seq), "response": self.responses_body()}

    # -- Anthropic Messages --------------------------------------------------------------------------------------

    def _blocks(self) -> List[Dict[str, Any]]:
        blocks: List[Dict[str, Any]] = []
        if self.reply.reasoning is not None:
            blocks.append({"type": "thinking", "thinking": self.reply.reasoning, "signature": "sig"})
        if self.reply.content is not None or not self.tool_calls:
            blocks.append({"type": "text", "text": self.reply.content or ""})
        for call in self.tool_calls:
            arguments = json.loads(call["function"]["arguments"] or "{}")
            blocks.append({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": arguments})
        return blocks

    def _stop_reason(self) -> str:
        if self.tool_calls:
            return "tool_use"
        return {"length": "max_tokens"}.get(self.reply.resolved_finish_reason(), "end_turn")

    def anthropic_body(self) -> Dict[str, Any]:
        usage = self.usage()
        return {
            "id": f"msg_{self.number}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self._blocks(),
            "stop_reason": self._stop_reason(),
            "stop_sequence": None,
            "usage": {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"]},
        }

    def anthropic_events(self) -> Iterator[Dict[str, Any]]:
        body = self.anthropic_body()
        start = {**body, "content": [], "stop_reason": None, "usage": {**body["usage"], "output_tokens": 0}}
        yield {"type": "message_start", "message": start}
        for index, block in enumerate(body["content"]):
            if block["type"] == "text":
                yield {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
                for word in _words(block["text"]):
                    yield {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": word}}
            elif block["type"] == "thinking":
                empty = {"type": "thinking", "thinking": "", "signature": ""}
                yield {"type": "content_block_start", "index": index, "content_block": empty}
                yield {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "thinking_delta", "thinking": block["thinking"]},
                }
                yield {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": block["signature"]},
                }
            else:
                yield {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}}
                yield {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
                }
            yield {"type": "content_block_stop", "index": index}
        yield {
            "type": "message_delta",
            "delta": {"stop_reason": body["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": body["usage"]["output_tokens"]},
        }
        yield {"type": "message_stop"}

    # -- Gemini generateContent ----------------------------------------------------------------------------------

    def _gemini_parts(self) -> List[Dict[str, Any]]:
        parts: List[Dict[str, Any]] = []
        if self.reply.reasoning is not None:
            parts.append({"text": self.reply.reasoning, "thought": True})
        if self.reply.content is not None or not self.tool_calls:
            parts.append({"text": self.reply.content or ""})
        for call in self.tool_calls:
            args = json.loads(call["function"]["arguments"] or "{}")
            parts.append({"functionCall": {"id": call["id"], "name": call["function"]["name"], "args": args}})
        return parts

    def gemini_body(self, parts: Optional[List[Dict[str, Any]]] = None, final: bool = True) -> Dict[str, Any]:
        usage = self.usage()
        candidate: Dict[str, Any] = {
            "content": {"role": "model", "parts": self._gemini_parts() if parts is None else parts},
            "index": 0,
        }
        if final:
            candidate["finishReason"] = "MAX_TOKENS" if self.reply.resolved_finish_reason() == "length" else "STOP"
        return {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": usage["prompt_tokens"],
                "candidatesTokenCount": usage["completion_tokens"],
                "totalTokenCount": usage["total_tokens"],
            },
            "modelVersion": self.model,
            "responseId": f"gen-{self.number}",
        }

    def gemini_chunks(self) -> Iterator[Dict[str, Any]]:
        parts = self._gemini_parts()
        pieces: List[Dict[str, Any]] = []
        for part in parts:
            if "text" in part and not part.get("thought"):
                pieces.extend({"text": word} for word in _words(part["text"]))
            else:
                pieces.append(part)
        for i, piece in enumerate(pieces):
            yield self.gemini_body([piece], final=i == len(pieces) - 1)


def _words(text: str) -> List[str]:
    words = text.split(" ") if text else [""]
    return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]


_ROUTES = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completion",
    "/v1/responses": "responses",
    "/v1/messages": "anthropic",
}
_NEEDS = {
    "chat": "messages",
    "completion": "prompt",
    "responses": "input",
    "anthropic": "messages",
    "gemini": "contents",
}


def _route(path: str) -> Optional[Tuple[str, bool]]:
    """(protocol, streamed by the path) for a POST path; Gemini's ``/v1beta/models/M:generateContent`` and
    ``:streamGenerateContent`` too."""
    if path in _ROUTES:
        return _ROUTES[path], False
    if path.startswith(("/v1beta/models/", "/v1/models/", "/v1beta/publishers/")) and ":" in path:
        action = path.rsplit(":", 1)[1]
        if action in ("generateContent", "streamGenerateContent"):
            return "gemini", action == "streamGenerateContent"
    return None


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(
        self, status: int, message: str, type: str = "invalid_request_error", code: Optional[str] = None
    ) -> None:
        self._send_json(status, {"error": {"message": message, "type": type, "code": code, "param": None}})

    def do_GET(self) -> None:
        owner = self.server.owner
        owner._record(RecordedRequest("GET", self.path, dict(self.headers.items()), None))
        if self.path.rstrip("/") == "/v1/models":
            self._send_json(
                200, {"object": "list", "data": [{"id": owner.model, "object": "model", "owned_by": "test"}]}
            )
        else:
            self._error(404, f"no route GET {self.path}", "not_found_error")

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            owner._record(
                RecordedRequest("POST", self.path, dict(self.headers.items()), raw.decode("utf-8", "replace"))
            )
            self._error(400, "request body is not valid JSON")
            return
        owner._record(RecordedRequest("POST", self.path, dict(self.headers.items()), body))
        path = self.path.split("?")[0].rstrip("/")
        route = _route(path)
        if route is None:
            self._error(404, f"no route POST {self.path}", "not_found_error")
            return
        kind, streamed = route
        if not isinstance(body, dict) or _NEEDS[kind] not in body:
            self._error(400, f"the request needs {_NEEDS[kind]}")
            return
        try:
            reply = _as_reply(owner.handler(body))
        except Exception as exc:  # noqa: BLE001 - the handler's bug becomes a 500 the client sees
            self._error(500, f"handler raised {type(exc).__name__}: {exc}", "server_error")
            return
        if isinstance(reply, ErrorReply):
            self._error(reply.status, reply.message, reply.type, reply.code)
            return
        if isinstance(reply, dict):
            self._send_json(200, reply)
            return
        stream = streamed or bool(body.get("stream"))
        if kind in ("chat", "completion"):
            builder = _Builder(owner, body, reply, kind == "chat")
            if stream:
                self._stream(builder.chunks())
            else:
                self._send_json(200, builder.body())
            return
        other = _OtherProtocols(owner, body, reply)
        if kind == "responses":
            if stream:
                self._stream(other.responses_events(), named=True)
            else:
                self._send_json(200, other.responses_body())
        elif kind == "anthropic":
            if stream:
                self._stream(other.anthropic_events(), named=True)
            else:
                self._send_json(200, other.anthropic_body())
        elif stream:
            self._stream(other.gemini_chunks(), done=False)
        else:
            self._send_json(200, other.gemini_body())

    def _stream(self, chunks: Iterator[Dict[str, Any]], *, named: bool = False, done: bool = True) -> None:
        """Server-sent events: ``data:`` lines (with ``event: <type>`` lines when ``named``), then ``[DONE]``
        (OpenAI chat and completions only)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def write(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        for chunk in chunks:
            event = b"event: " + str(chunk.get("type")).encode() + b"\n" if named else b""
            write(event + b"data: " + json.dumps(chunk).encode() + b"\n\n")
        if done and not named:
            write(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the stdlib's 5 drops connections when many agents connect at once
    owner: OpenAITestServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that drops its connection is normal in tests; anything else is printed as usual."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class OpenAITestServer:
    """An OpenAI-compatible server on ``127.0.0.1`` in a background thread; use it as a context manager.

    Args:
        handler: ``(request_body) -> str | Reply | ErrorReply | dict``; default :func:`echo_handler`. Called from
            the server's threads, possibly concurrently.
        port: 0 picks a free port.
        model: the model name reported when a request names none, and by ``/v1/models``.
    """

    def __init__(self, handler: Optional[Handler] = None, *, port: int = 0, model: str = "test-model") -> None:
        self.handler: Handler = handler or echo_handler
        self.model = model
        self._port = port
        self._server: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._requests: List[RecordedRequest] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("OpenAITestServer is not running; use `with OpenAITestServer(...) as srv:`")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: pass it to ``openai.OpenAI(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``: the base URL for clients that add their own version prefix (google-genai)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> List[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def next_id(self) -> int:
        return next(self._ids)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def start(self) -> OpenAITestServer:
        if self._server is not None:
            return self
        server = _HTTPServer(("127.0.0.1", self._port), _RequestHandler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
