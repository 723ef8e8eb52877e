"""An OpenAI-compatible Chat Completions server for the current policy, with vLLM-style token ids."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

import anyio
import anyio.from_thread
import anyio.lowlevel

from .batcher import Batcher, Pending
from .spans import ServedCall, call_span

__all__ = ["PolicyServer", "RequestError", "parse_request"]

logger = logging.getLogger(__name__)


class RequestError(ValueError):
    """A bad request; answered with HTTP 400 and an OpenAI-style error body naming the parameter."""

    def __init__(self, message: str, param: Optional[str] = None) -> None:
        super().__init__(message)
        self.param = param


def _number(body: Dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(f"'{key}' must be a number in [{low}, {high}], got {value!r}", key)
    return float(value)


def _integer(body: Dict[str, Any], keys: Tuple[str, ...], default: int, low: int, high: int) -> int:
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise RequestError(f"'{key}' must be an integer in [{low}, {high}], got {value!r}", key)
        return int(value)
    return default


def parse_request(body: Any, *, default_max_tokens: int = 16, max_n: int = 64) -> Dict[str, Any]:
    """Validate a chat completion body; returns the sampling parameters the server uses."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list of messages", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError(f"messages[{i}] must be an object with a string 'role'", "messages")
    return {
        "messages": messages,
        "model": str(body.get("model") or ""),
        "n": _integer(body, ("n",), 1, 1, max_n),
        "max_tokens": _integer(body, ("max_completion_tokens", "max_tokens"), default_max_tokens, 1, 4096),
        "temperature": _number(body, "temperature", 1.0, 0.0, 10.0),
        "top_p": _number(body, "top_p", 1.0, 1e-6, 1.0),
        "stream": bool(body.get("stream", False)),
        "return_token_ids": bool(body.get("return_token_ids", False)),
        "include_usage": bool((body.get("stream_options") or {}).get("include_usage", False)),
    }


def _error(status: int, message: str, param: Optional[str] = None) -> Any:
    from starlette.responses import JSONResponse

    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}}, status)


def _usage(call: ServedCall) -> Dict[str, int]:
    prompt = len(call.prompt_token_ids)
    completion = sum(len(c["token_ids"]) for c in call.choices)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_body(call: ServedCall, created: int, token_ids: bool) -> Dict[str, Any]:
    choices = []
    for c in call.choices:
        choice: Dict[str, Any] = {
            "index": c["index"],
            "message": {"role": "assistant", "content": c["text"]},
            "finish_reason": c["finish_reason"],
            "logprobs": None,
        }
        if token_ids:
            choice["token_ids"] = c["token_ids"]
        choices.append(choice)
    body: Dict[str, Any] = {
        "id": call.response_id,
        "object": "chat.completion",
        "created": created,
        "model": call.model,
        "choices": choices,
        "usage": _usage(call),
    }
    if token_ids:
        body["prompt_token_ids"] = call.prompt_token_ids
    return body


async def _sse(call: ServedCall, created: int, token_ids: bool, include_usage: bool) -> AsyncIterator[bytes]:
    """The answer as ``chat.completion.chunk`` events: role, content (with its token ids), finish, [usage], DONE."""

    def chunk(choices: List[Dict[str, Any]], **extra: Any) -> bytes:
        payload = {
            "id": call.response_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": call.model,
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(payload)}\n\n".encode()

    first_extra = {"prompt_token_ids": call.prompt_token_ids} if token_ids else {}
    yield chunk(
        [
            {"index": c["index"], "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            for c in call.choices
        ],
        **first_extra,
    )
    for c in call.choices:
        choice: Dict[str, Any] = {"index": c["index"], "delta": {"content": c["text"]}, "finish_reason": None}
        if token_ids:
            choice["token_ids"] = c["token_ids"]
        yield chunk([choice])
    yield chunk([{"index": c["index"], "delta": {}, "finish_reason": c["finish_reason"]} for c in call.choices])
    if include_usage:
        yield chunk([], usage=_usage(call))
    yield b"data: [DONE]\n\n"


class PolicyServer:
    """Serves ``policy`` at ``http://host:port/v1`` and ``/rollout/{rollout_id}/attempt/{attempt_id}/v1``.

    Calls under a rollout path are recorded in the store (one ``raw_gen_ai_request`` span each, see
    :mod:`.spans`). Give ``store`` (an open store; :meth:`start` must then run inside that store's event loop, whose
    thread the server calls back into) or ``store_url`` (the server opens its own connection: zero-copy stores only).

    The server runs in a daemon thread with its own asyncio loop, so it works whether the caller uses asyncio or trio.
    Concurrent requests are batched into one ``generate`` call; ``n`` > 1 samples a whole group in one request.
    """

    def __init__(
        self,
        policy: Any,
        *,
        store: Any = None,
        store_url: Optional[str] = None,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: Optional[str] = None,
        max_batch: int = 256,
        batch_wait_s: float = 0.003,
        default_max_tokens: int = 16,
    ) -> None:
        if store is not None and store_url is not None:
            raise ValueError("PolicyServer takes store or store_url, not both")
        self.policy = policy
        self.store = store
        self.store_url = store_url
        self.host = host
        self.port = port
        self.model_name = model_name or getattr(policy, "name", "policy")
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_s
        self.default_max_tokens = default_max_tokens
        self.version = 0
        self.batcher: Optional[Batcher] = None
        self._token: Any = None
        self._launcher: Any = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The OpenAI base URL (``.../v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout: float = 30.0) -> PolicyServer:
        """Serve in a daemon thread; returns once the server answers (raises :class:`ServerStartupError` if not)."""
        from agentlightning.utils.server_launcher import BackgroundServer

        if self._launcher is not None:
            raise RuntimeError("PolicyServer already started")
        if self.store is not None:
            try:
                self._token = anyio.lowlevel.current_token()
            except RuntimeError as exc:
                raise RuntimeError(
                    "PolicyServer(store=...) must be started inside the store's event loop; "
                    "outside one, pass store_url= instead"
                ) from exc
        launcher = BackgroundServer(
            self.app(),
            host=self.host,
            port=self.port,
            name="the policy server",
            startup_timeout=timeout,
            serve_context=self._serving,
            lifespan="off",
        )
        self._launcher = launcher.start()
        self.port = launcher.port
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._launcher is not None:
            self._launcher.stop(timeout)
            self._launcher = None

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @contextlib.asynccontextmanager
    async def _serving(self) -> AsyncIterator[None]:
        """Around serving, in the server's loop: the store connection (``store_url``) and the batching task."""
        own_store = None
        recorder = None
        if self.store_url is not None:
            from agentlightning.store import open_store

            own_store = open_store(self.store_url)
            recorder = self._recorder(own_store, None)
        elif self.store is not None:
            recorder = self._recorder(self.store, self._token)
        self.batcher = Batcher(
            self.policy, recorder, version=lambda: self.version, max_batch=self.max_batch, wait_s=self.batch_wait_s
        )
        batch_task = asyncio.ensure_future(self.batcher.run())
        try:
            yield
        finally:
            batch_task.cancel()
            if own_store is not None:
                await own_store.close()

    # -- recording -------------------------------------------------------------------------------------------

    @staticmethod
    def _recorder(store: Any, token: Any) -> Any:
        async def record_here(entries: List[Tuple[ServedCall, Optional[str], Optional[str]]]) -> List[int]:
            keyed = [(i, rid, aid) for i, (_, rid, aid) in enumerate(entries) if rid and aid]
            seqs = [0] * len(entries)
            if not keyed:
                return seqs
            allocated = await store.get_many_span_sequence_ids([(rid, aid) for _, rid, aid in keyed])
            spans = []
            for (i, rid, aid), seq in zip(keyed, allocated, strict=True):
                seqs[i] = int(seq)
                spans.append(call_span(entries[i][0], rid, aid, int(seq)))
            await store.add_many_spans(spans)
            return seqs

        if token is None:
            return record_here

        async def record_via_owner(entries: List[Tuple[ServedCall, Optional[str], Optional[str]]]) -> List[int]:
            return await asyncio.to_thread(lambda: anyio.from_thread.run(record_here, entries, token=token))

        return record_via_owner

    # -- HTTP ------------------------------------------------------------------------------------------------

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.routing import Route

        routes = []
        for prefix in ("", "/rollout/{rollout_id}/attempt/{attempt_id}"):
            routes += [
                Route(f"{prefix}/v1/chat/completions", self._chat, methods=["POST"]),
                Route(f"{prefix}/v1/models", self._models, methods=["GET"]),
            ]
        routes.append(Route("/health", self._health, methods=["GET"]))
        return Starlette(routes=routes)

    async def _health(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"status": "ok", "model": self.model_name, "version": self.version})

    async def _models(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        model = {"id": self.model_name, "object": "model", "created": 0, "owned_by": "agentlightning-torch"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _chat(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "the request body is not valid JSON")
        try:
            params = parse_request(body, default_max_tokens=self.default_max_tokens)
            prompt_ids = self.policy.encode_chat(params["messages"])
        except RequestError as exc:
            return _error(400, str(exc), exc.param)
        except (ValueError, TypeError, KeyError) as exc:
            return _error(400, f"cannot encode 'messages': {exc}", "messages")
        max_len = getattr(getattr(self.policy.model, "config", None), "max_len", None)
        if isinstance(max_len, int) and len(prompt_ids) + params["max_tokens"] > max_len:
            return _error(
                400,
                f"prompt ({len(prompt_ids)} tokens) + max_tokens ({params['max_tokens']}) exceeds the model's "
                f"context of {max_len} tokens",
                "messages",
            )
        assert self.batcher is not None
        loop = asyncio.get_running_loop()
        pending = Pending(
            messages=params["messages"],
            prompt_ids=prompt_ids,
            params=params,
            model=str(params["model"] or self.model_name),
            rollout_id=request.path_params.get("rollout_id"),
            attempt_id=request.path_params.get("attempt_id"),
            future=loop.create_future(),
        )
        try:
            call, _ = await self.batcher.submit(pending)
        except Exception as exc:  # noqa: BLE001 - a failed generation is answered as a 500
            return _error(500, f"generation failed: {exc}")
        created = int(time.time())
        if params["stream"]:
            return StreamingResponse(
                _sse(call, created, params["return_token_ids"], params["include_usage"]),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        return JSONResponse(completion_body(call, created, params["return_token_ids"]))
