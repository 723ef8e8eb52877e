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
``POST /v1/completions``, ``GET /v1/models``. A handler returns a ``str``, a :class:`Reply`, an :class:`ErrorReply`
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
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

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


def render_prompt(request: Dict[str, Any]) -> str:
    """The text the fake tokenizer sees for a request: ``role: content`` lines, or the completion prompt."""
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
    if "messages" in request:
        users = [m for m in request.get("messages") or [] if m.get("role") == "user"]
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
        self.tool_calls = [
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
        if path not in ("/v1/chat/completions", "/v1/completions"):
            self._error(404, f"no route POST {self.path}", "not_found_error")
            return
        chat = path.endswith("chat/completions")
        if not isinstance(body, dict) or ("messages" if chat else "prompt") not in body:
            self._error(400, f"the request needs {'messages' if chat else 'prompt'}")
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
        builder = _Builder(owner, body, reply, chat)
        if body.get("stream"):
            self._stream(builder.chunks())
        else:
            self._send_json(200, builder.body())

    def _stream(self, chunks: Iterator[Dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def write(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        for chunk in chunks:
            write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
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
