"""The gateway: a small starlette app that serves OpenAI- and Anthropic-compatible routes through the LiteLLM SDK.

``/rollout/{rollout_id}/attempt/{attempt_id}/v1/...`` is served as ``/v1/...`` and recorded under that rollout and
attempt; bare ``/v1/...`` calls are served but not recorded. Routes: ``POST .../chat/completions``,
``.../completions``, ``.../messages`` (Anthropic), ``.../responses``; ``GET /v1/models``; ``GET /health``. Anthropic
calls to vLLM-style backends become chat completions inside LiteLLM; Responses calls to them become chat completions
here (:mod:`.responses_bridge`); either way the backend's token ids are recorded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

import anyio
from agentlightning.store.base import LightningStore

from . import responses_bridge
from ._litellm import import_litellm
from .capture import CallError, CallRecord, StreamCollector, call_spans, restore_token_ids
from .deployments import Deployments, translated_to_chat
from .litellm_hooks import inner_call, install_inner_capture, observe_raw_chunks, to_dict
from .recorder import SpanRecorder
from .routing import endpoint_kind, split_rollout_path
from .settings import ProxySettings
from .validation import check_chat_request

__all__ = ["build_app", "error_of"]

logger = logging.getLogger(__name__)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DEFAULT_CALL_TIMEOUT = 600.0
"""Seconds a backend may take to answer (or to send the next chunk of a stream) when the settings name no timeout."""


class BackendTimeoutError(TimeoutError):
    """The backend did not answer in time (the gateway's own deadline: LiteLLM's aiohttp transport can stall)."""

    status_code = 408


def error_of(exc: BaseException) -> CallError:
    """The status, type and message a backend (or LiteLLM) error is answered with."""
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int) or not 400 <= status < 600:
        status = 500
    name = type(exc).__name__
    if name == "ContextWindowExceededError":
        kind = "context_length_exceeded"
    elif name in ("Timeout", "APITimeoutError", "BackendTimeoutError"):
        kind, status = "timeout", 408 if status == 500 else status
    else:
        kind = _ERROR_TYPES.get(status, "api_error")
    message = getattr(exc, "message", None) or str(exc) or name
    return CallError(status=status, type=kind, message=str(message))


def _error_body(error: CallError, kind: str) -> Dict[str, Any]:
    if kind == "anthropic":
        return {"type": "error", "error": {"type": error.type, "message": error.message}}
    return {"error": {"message": error.message, "type": error.type, "code": error.type, "param": None}}


def _sse_events(buffer: bytes) -> Tuple[List[Dict[str, Any]], bytes]:
    """Complete ``data:`` JSON events in ``buffer`` and the unparsed rest."""
    events = []
    while b"\n\n" in buffer:
        block, buffer = buffer.split(b"\n\n", 1)
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                try:
                    data = json.loads(line[5:].strip())
                except ValueError:
                    continue
                if isinstance(data, dict):
                    events.append(data)
    return events, buffer


class Gateway:
    """Request handling; one per serving process."""

    def __init__(self, settings: ProxySettings, store: Optional[LightningStore]) -> None:
        self.settings = settings
        self.store = store
        self.deployments = Deployments(settings.model_list)
        self.recorder: Optional[SpanRecorder] = None
        self.litellm: Any = None
        self.unrecorded = 0

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        self.litellm = import_litellm()
        for key, value in (self.settings.litellm_config.get("litellm_settings") or {}).items():
            setattr(self.litellm, key, value)
        install_inner_capture(self.litellm)
        async with anyio.create_task_group() as tg:
            if self.store is not None:
                self.recorder = SpanRecorder(
                    self.store, use_otlp=self.settings.use_otlp, retry_seconds=self.settings.retry_seconds
                )
                tg.start_soon(self.recorder.run)
            try:
                yield
            finally:
                if self.recorder is not None and not await self.recorder.wait_idle(10.0):
                    logger.warning("Stopping with proxy spans still undelivered")
                tg.cancel_scope.cancel()

    # -- routes --------------------------------------------------------------------------------------------------

    async def dispatch(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        routed = split_rollout_path(request.url.path)
        path = routed.path.rstrip("/") or "/"
        if request.method == "GET":
            if path in ("/health", "/v1/health"):
                return JSONResponse({"status": "ok"})
            if path in ("/v1/models", "/models"):
                data = [{"id": n, "object": "model", "owned_by": "agentlightning"} for n in self.deployments.names()]
                return JSONResponse({"object": "list", "data": data})
            if path == "/agl/stats":
                rec = self.recorder
                return JSONResponse(
                    {
                        "delivered": rec.delivered if rec else 0,
                        "dropped": rec.dropped if rec else 0,
                        "unrecorded": self.unrecorded,
                        "otlp_endpoint": rec.otlp_endpoint if rec else None,
                    }
                )
        kind = endpoint_kind(path) if request.method == "POST" else None
        if kind is None:
            error = CallError(404, "not_found_error", f"no route {request.method} {routed.path}")
            return JSONResponse(_error_body(error, "openai"), status_code=404)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            return JSONResponse(
                _error_body(CallError(400, "invalid_request_error", f"body is not JSON: {exc}"), kind), 400
            )
        if not isinstance(body, dict):
            return JSONResponse(
                _error_body(CallError(400, "invalid_request_error", "body must be a JSON object"), kind), 400
            )
        return await self._call(kind, body, routed.rollout_id, routed.attempt_id)

    async def _call(self, kind: str, body: Dict[str, Any], rollout_id: Optional[str], attempt_id: Optional[str]) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        record = CallRecord(kind=kind, request=dict(body))
        ids: Optional[Tuple[str, str, Optional[int]]] = None
        if rollout_id is not None and attempt_id is not None and self.recorder is not None:
            ids = (rollout_id, attempt_id, await self.recorder.next_sequence_id(rollout_id, attempt_id))
        else:
            self.unrecorded += 1
        try:
            params = self.deployments.pick(body.get("model"))
        except LookupError as exc:
            record.error = CallError(400, "invalid_request_error", str(exc))
            return self._fail(record, ids)
        problem = check_chat_request(body) if kind == "chat" else None
        if problem is not None:
            record.error = CallError(400, "invalid_request_error", problem)
            return self._fail(record, ids)
        record.model = str(params.get("model"))
        record.provider = record.model.split("/", 1)[0] if "/" in record.model else "openai"
        if kind == "responses" and responses_bridge.bridged(params):
            return await self._bridged_responses(body, params, record, ids)
        kwargs = self._kwargs(kind, body, params)
        stream = bool(body.get("stream"))
        collector = StreamCollector(kind)
        token = inner_call.set(collector if kind == "anthropic" else None)
        try:
            try:
                with self._deadline():
                    result = await self._invoke(kind, kwargs)
            finally:
                inner_call.reset(token)
            if not stream:
                answer = restore_token_ids(to_dict(result))
                record.response = {**answer, **collector.token_ids()}
                record.end_time = time.time()
                self._record(record, ids)
                return JSONResponse(answer)
            if kind != "anthropic":
                observe_raw_chunks(result, collector)
            iterator = result.__aiter__()
            first = await self._next(iterator)
        except Exception as exc:  # noqa: BLE001 - any backend failure is recorded and answered as an error
            record.error = error_of(exc)
            logger.info("Backend call failed: %s %s", record.error.status, record.error.message)
            return self._fail(record, ids)
        return StreamingResponse(
            self._stream(kind, iterator, first, collector, record, ids),
            media_type="text/event-stream",
            headers=_SSE_HEADERS,
        )

    async def _bridged_responses(
        self,
        body: Dict[str, Any],
        params: Dict[str, Any],
        record: CallRecord,
        ids: Optional[Tuple[str, str, Optional[int]]],
    ) -> Any:
        """A Responses call served by a chat completion to a vLLM-style backend, so its token ids are recorded."""
        from starlette.responses import JSONResponse, StreamingResponse

        kwargs = self._kwargs("chat", responses_bridge.chat_request(body), params)
        try:
            with self._deadline():
                chat = restore_token_ids(to_dict(await self.litellm.acompletion(**kwargs)))
        except Exception as exc:  # noqa: BLE001 - any backend failure is recorded and answered as an error
            record.error = error_of(exc)
            return self._fail(record, ids)
        answer = responses_bridge.responses_body(chat, body)
        token_ids = {k: v for k, v in responses_bridge.token_ids(chat).items() if v}
        record.response = {**answer, **token_ids}
        record.end_time = time.time()
        self._record(record, ids)
        if not body.get("stream"):
            return JSONResponse(answer)

        async def events() -> AsyncIterator[bytes]:
            for event in responses_bridge.responses_events(answer):
                yield responses_bridge.sse(event)

        return StreamingResponse(events(), media_type="text/event-stream", headers=_SSE_HEADERS)

    # -- helpers -------------------------------------------------------------------------------------------------

    def _kwargs(self, kind: str, body: Dict[str, Any], params: Dict[str, Any]) -> Dict[str, Any]:
        kwargs = {k: v for k, v in body.items() if k != "model"}
        if self.settings.return_token_ids and (kind in ("chat", "completion") or translated_to_chat(kind, params)):
            kwargs.setdefault("return_token_ids", True)
        if kind in ("chat", "completion") and self.settings.logprobs and kwargs.get("logprobs") in (None, False):
            kwargs["logprobs"] = True if kind == "chat" else 1
        kwargs.update(params)
        if self.settings.num_retries and kind in ("chat", "completion"):
            kwargs.setdefault("num_retries", self.settings.num_retries)
        if self.settings.timeout is not None:
            kwargs.setdefault("timeout", self.settings.timeout)
        return kwargs

    async def _invoke(self, kind: str, kwargs: Dict[str, Any]) -> Any:
        ll = self.litellm
        if kind == "chat":
            return await ll.acompletion(**kwargs)
        if kind == "completion":
            return await ll.atext_completion(**kwargs)
        if kind == "anthropic":
            return await ll.anthropic_messages(**kwargs)
        return await ll.aresponses(**kwargs)

    @contextlib.contextmanager
    def _deadline(self) -> Any:
        """Bound one wait on the backend by wall-clock time, whatever the transport does with its own timeout."""
        seconds = self.settings.timeout if self.settings.timeout is not None else DEFAULT_CALL_TIMEOUT
        try:
            with anyio.fail_after(seconds):
                yield
        except TimeoutError as exc:
            raise BackendTimeoutError(f"the backend did not answer within {seconds:g} s") from exc

    async def _next(self, iterator: Any) -> Any:
        """The stream's next item (None at its end), within the deadline."""
        try:
            with self._deadline():
                return await iterator.__anext__()
        except StopAsyncIteration:
            return None

    def _encode(self, kind: str, item: Any, collector: StreamCollector, buffer: List[bytes]) -> bytes:
        if isinstance(item, (bytes, bytearray)):  # already SSE (LiteLLM's Anthropic stream)
            events, rest = _sse_events(buffer[0] + bytes(item))
            buffer[0] = rest
            for event in events:
                collector.add(event)
            return bytes(item)
        if isinstance(item, str):
            return self._encode(kind, item.encode(), collector, buffer)
        data = to_dict(item)
        collector.add(data)
        if kind in ("chat", "completion") and collector.prompt_token_ids is not None and not collector.prompt_ids_sent:
            data.setdefault("prompt_token_ids", collector.prompt_token_ids)  # as vLLM sends it, on the first chunk
            collector.prompt_ids_sent = True
        payload = json.dumps(data, separators=(",", ":"))
        if kind in ("chat", "completion"):
            return f"data: {payload}\n\n".encode()
        return f"event: {data.get('type', 'message')}\ndata: {payload}\n\n".encode()

    async def _stream(
        self,
        kind: str,
        iterator: Any,
        first: Any,
        collector: StreamCollector,
        record: CallRecord,
        ids: Optional[Tuple[str, str, Optional[int]]],
    ) -> AsyncIterator[bytes]:
        buffer = [b""]
        try:
            item = first
            while item is not None:
                yield self._encode(kind, item, collector, buffer)
                item = await self._next(iterator)
            if kind in ("chat", "completion"):
                yield b"data: [DONE]\n\n"
        except Exception as exc:  # noqa: BLE001 - any backend failure is recorded and ends the stream
            record.error = error_of(exc)
            logger.info("Backend stream failed: %s %s", record.error.status, record.error.message)
            yield f"data: {json.dumps(_error_body(record.error, kind))}\n\n".encode()
        finally:
            close = getattr(iterator, "aclose", None)
            if callable(close):  # an agent that hung up: let the backend stop generating
                with anyio.move_on_after(5, shield=True):
                    with contextlib.suppress(Exception):
                        await close()
            final = collector.response()
            record.response = {**final, **collector.token_ids()} if kind == "anthropic" and final else final
            record.end_time = time.time()
            self._record(record, ids)

    def _fail(self, record: CallRecord, ids: Optional[Tuple[str, str, Optional[int]]]) -> Any:
        from starlette.responses import JSONResponse

        assert record.error is not None
        record.end_time = time.time()
        self._record(record, ids)
        return JSONResponse(_error_body(record.error, record.kind), status_code=record.error.status)

    def _record(self, record: CallRecord, ids: Optional[Tuple[str, str, Optional[int]]]) -> None:
        if ids is None or self.recorder is None:
            return
        try:
            rollout_id, attempt_id, seq = ids
            spans = call_spans(record, rollout_id, attempt_id, seq if seq is not None else 0)
            self.recorder.submit(spans, sequence_known=seq is not None)
        except Exception:  # recording must never fail the call
            logger.exception("Could not record a proxied call")


def build_app(settings: ProxySettings, store: Optional[LightningStore]) -> Any:
    """The ASGI app for ``settings``; spans go to ``store`` (None: nothing is recorded)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    gateway = Gateway(settings, store)
    app = Starlette(
        routes=[Route("/{path:path}", gateway.dispatch, methods=["GET", "POST"])],
        lifespan=gateway.lifespan,
    )
    app.state.gateway = gateway
    return app
