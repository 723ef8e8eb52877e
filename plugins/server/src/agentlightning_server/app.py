"""The ASGI application: REST routes, OTLP ingestion, bearer-token auth, size limits, timeouts, JSON errors."""

from __future__ import annotations

import gzip
import hmac
import json
import logging
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Pattern, Sequence, Tuple, Union

import anyio
import attrs
from agentlightning.store.base import LightningStore
from agentlightning.store.errors import InvalidRequestError
from agentlightning.store.limits import MAX_JSON_DEPTH, check_value
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from . import otlp, wire
from .aio import time_limit
from .idempotency import IdempotencyCache
from .params import BadInput
from .routes import OFFLOAD_ITEMS, ROUTES, Call, RouteSpec
from .web_apps import WebAppMounts, installed_web_apps

__all__ = ["ServerSettings", "create_app", "create_app_from_env", "SETTINGS_ENV"]

logger = logging.getLogger(__name__)

_JSON_TYPE = wire.JSON_TYPE.encode()
_IDEMPOTENCY_HEADER = wire.IDEMPOTENCY_HEADER.lower().encode()

SETTINGS_ENV = "AGL_SERVER_SETTINGS"
"""JSON settings (with ``store`` as a URL) read by :func:`create_app_from_env` in uvicorn worker processes."""

StoreSource = Union[LightningStore, str, Callable[[], LightningStore]]


@attrs.define(kw_only=True)
class ServerSettings:
    """What the application enforces. ``token=None``: no authentication (only sensible on loopback)."""

    token: Optional[str] = None
    max_body_bytes: int = 32 * 1024 * 1024
    request_timeout: float = 60.0
    max_wait_seconds: float = 60.0
    cors_origins: Sequence[str] = ()
    idempotency_entries: int = 10_000
    idempotency_bytes: int = 64 * 1024 * 1024
    """Bytes of answers the idempotency cache keeps at most (oldest dropped first)."""
    idempotency_ttl: float = 600.0
    """Seconds an answer stays in the idempotency cache (a client's retries come within seconds)."""
    max_head_bytes: int = 64 * 1024
    max_url_bytes: int = 32 * 1024
    head_timeout: float = 10.0
    keep_alive_timeout: float = 30.0
    max_connections: Optional[int] = None
    """Connection limits (see :class:`~agentlightning_server.protocol.ConnectionLimits`); ``keep_alive_timeout``:
    seconds an idle keep-alive connection stays open."""
    read_only: bool = False
    """Answer only the routes that read the store (GETs, searches, waits); every write gets 403."""
    web_apps: bool = True
    """Serve the web apps that installed plugins register (``agentlightning_register_web_apps``) at ``/<name>/``."""

    def http_options(self) -> Dict[str, Any]:
        """uvicorn options enforcing the connection limits (``http`` protocol class and keep-alive timeout)."""
        from .protocol import ConnectionLimits, CorkedHTTPProtocol

        limits = ConnectionLimits(
            max_head_bytes=self.max_head_bytes,
            max_url_bytes=self.max_url_bytes,
            head_timeout=self.head_timeout,
            max_connections=self.max_connections,
        )
        return {"http": CorkedHTTPProtocol.with_limits(limits), "timeout_keep_alive": self.keep_alive_timeout}


class _Error(Exception):
    def __init__(self, status: int, detail: str, error_type: str) -> None:
        super().__init__(detail)
        self.status, self.detail, self.error_type = status, detail, error_type


def _json(status: int, data: Any) -> Response:
    return Response(wire.dumps(data), status_code=status, media_type=wire.JSON_TYPE)


def _error(status: int, detail: str, error_type: str) -> Response:
    return _json(status, wire.error_body(detail, error_type))


def _exception_response(exc: BaseException) -> tuple[int, bytes]:
    status = wire.error_status(exc)
    detail = str(exc) or type(exc).__name__
    if status >= 500 and status not in (503, 504):
        logger.exception("store error while serving a request", exc_info=exc)
    return status, wire.dumps(wire.error_body(detail, wire.error_type_name(exc)))


def _check_length(declared: Optional[Union[str, bytes]], limit: int) -> None:
    if declared is None:
        return
    try:
        too_big = int(declared) > limit
    except ValueError:
        raise _Error(400, f"invalid Content-Length header {declared!r}", "InvalidRequestError") from None
    if too_big:
        raise _Error(413, f"request body larger than the limit of {limit} bytes", "InvalidRequestError")


def _too_big(limit: int) -> _Error:
    return _Error(413, f"request body larger than the limit of {limit} bytes", "InvalidRequestError")


async def _read_body(request: Request, limit: int, decoder: otlp.Decompressor) -> bytes:
    """The body, decoded chunk by chunk as it arrives; both the sent and the decoded bytes are held to ``limit``."""
    _check_length(request.headers.get("content-length"), limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_big(limit)
        decoder.feed(chunk)
    return decoder.result()


async def _receive_body(declared: Optional[bytes], receive: Receive, limit: int) -> bytes:
    """The request body straight from the ASGI ``receive`` channel, refused once it passes ``limit`` bytes."""
    _check_length(None if declared is None else declared.decode("latin-1"), limit)
    chunks: List[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Error(400, "the client disconnected while sending the request body", "InvalidRequestError")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_big(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


RECORDED_ANSWER_WAIT_SECONDS = 10.0
"""How long a retry waits for the answer of the earlier try that applied its write (still being sent)."""

OFFLOAD_BYTES = 1024 * 1024
"""Request bodies larger than this are parsed in a worker thread, not on the event loop."""

MAX_BODY_DEPTH = MAX_JSON_DEPTH + 8
"""Deepest nesting of a JSON request body: a stored value's limit plus the request's own envelope (``{"spans":
[{"attributes": {...}}]}``), so that every value a store accepts can be sent."""


def _parse_json(raw: bytes) -> Any:
    """A JSON request body, refused (400) when malformed, nested more than :data:`MAX_BODY_DEPTH` levels deep, or
    holding an integer a store cannot keep exactly."""
    long_digits = wire.has_long_digits(raw)
    try:
        body = wire.loads(raw, long_digits)
    except ValueError as exc:
        message = str(exc)
        if "depth" in message or "deep" in message:
            message = f"the request body is nested more than {MAX_BODY_DEPTH} levels deep"
            raise _Error(400, message, "InvalidRequestError") from None
        raise _Error(400, f"malformed JSON body: {message}", "InvalidRequestError") from None
    # walked only when it could be too deep (more brackets than the limit) or hold a wide integer (read exactly by
    # wire.loads then): a span write does not pay for a walk here, the store checks its values anyway
    if long_digits or (len(raw) > 2 * MAX_BODY_DEPTH and raw.count(b"[") + raw.count(b"{") > MAX_BODY_DEPTH):
        try:
            check_value(body, "the request body", max_depth=MAX_BODY_DEPTH)
        except InvalidRequestError as exc:
            raise _Error(400, str(exc), "InvalidRequestError") from None
    return body


def _headers(scope: Scope) -> Dict[bytes, bytes]:
    """The request headers by lower-case name (ASGI servers lower-case them already)."""
    return dict(scope["headers"])


class _Auth:
    """Pure ASGI middleware: every HTTP request but the health check needs ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == wire.API_PREFIX + "/health":
            await self.app(scope, receive, send)
            return
        given: Optional[bytes] = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if given is not None:
                    response = _error(400, "more than one Authorization header", "InvalidRequestError")
                    await response(scope, receive, send)
                    return
                given = value
        if given is None or not hmac.compare_digest(given, self.expected):
            detail = "missing bearer token" if given is None else "wrong bearer token"
            response = _error(401, f"{detail}: send 'Authorization: Bearer <token>'", "AuthenticationError")
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _App:
    """The request handling, over one store."""

    def __init__(self, source: StoreSource, settings: ServerSettings) -> None:
        self.source = source
        self.settings = settings
        self.store: Optional[LightningStore] = source if isinstance(source, LightningStore) else None
        self.owns_store = self.store is None
        self.idempotency = IdempotencyCache(
            max_entries=settings.idempotency_entries,
            max_bytes=settings.idempotency_bytes,
            ttl_seconds=settings.idempotency_ttl,
        )

    async def open(self) -> None:
        if self.store is None:
            if isinstance(self.source, str):
                from agentlightning.store import open_store

                self.store = open_store(self.source)
            else:
                self.store = self.source()  # type: ignore[operator]

    async def close(self) -> None:
        if self.owns_store and self.store is not None:
            await self.store.close()

    def endpoint(self, spec: RouteSpec) -> ASGIApp:
        """The ASGI app answering ``spec`` (path parameters in ``scope["path_params"]``)."""
        return _Endpoint(self, spec)

    async def _answer(self, spec: RouteSpec, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        if self.settings.read_only and not reads_only(spec):
            return 403, wire.dumps(wire.error_body(f"this server is read-only: {spec.name} refused", "PermissionError"))
        try:
            headers = _headers(scope)
            body: Any = None
            if spec.has_body:
                raw = await _receive_body(headers.get(b"content-length"), receive, self.settings.max_body_bytes)
                if len(raw) > OFFLOAD_BYTES:  # parsed in a worker thread: the loop keeps serving other clients
                    body = await anyio.to_thread.run_sync(_parse_json, raw)
                elif raw.strip():
                    body = _parse_json(raw)
            store = self.store
            assert store is not None
            query = None
            if not spec.has_body:
                query = QueryParams(scope.get("query_string", b""))
            path = scope.get("path_params", {})
            max_wait = self.settings.max_wait_seconds

            async def handle() -> tuple[int, bytes]:
                try:
                    limit = self.settings.request_timeout
                    if spec.long_running:
                        limit += self.settings.max_wait_seconds
                    async with time_limit(limit):
                        call = Call(store, path, body, spec.read(body, query), max_wait)
                        data = await spec.handler(call)
                    if isinstance(data, dict) and len(data.get("items") or ()) > OFFLOAD_ITEMS:
                        return spec.status, await anyio.to_thread.run_sync(wire.dumps, data)
                    return spec.status, wire.dumps(data)
                except TimeoutError:
                    return 504, wire.dumps(wire.error_body("the store did not answer in time", "TimeoutError"))
                except Exception as exc:  # noqa: BLE001 - every store error goes back to the client
                    return _exception_response(exc)

            key = headers.get(_IDEMPOTENCY_HEADER) if spec.keyed else None
            return await self._keyed(store, spec.method, scope["path"], key, handle)
        except _Error as exc:
            return exc.status, wire.dumps(wire.error_body(exc.detail, exc.error_type))

    async def _keyed(
        self, store: Any, method: str, path: str, key: Optional[bytes], handle: Callable[[], Any]
    ) -> tuple[int, bytes]:
        """``handle()``'s answer; with an ``Idempotency-Key``, once per key: a retry gets the first try's answer."""
        if not key:
            response: tuple[int, bytes] = await handle()
            return response
        full_key = f"{method} {path} {key.decode('latin-1')}"
        if getattr(store, "keeps_request_keys", False):
            return await self.idempotency.run(full_key, lambda: self._answer_once(store, full_key, handle))
        return await self.idempotency.run(full_key, handle)

    async def _answer_once(self, store: Any, key: str, handle: Callable[[], Any]) -> tuple[int, bytes]:
        """Serve a keyed request on a store that records idempotency keys: its write records the key; a retry whose
        write finds the key recorded (an earlier try was applied, here or on another server) gets that try's
        answer instead."""
        from agentlightning.store.request_keys import request_key_scope

        with request_key_scope(key) as scope:
            response: tuple[int, bytes] = await handle()
        if scope.applied_before:
            return await self._recorded_answer(store, key, handle)
        if scope.claimed:
            try:
                if not scope.result_recorded:  # else a retry is answered from the recorded result
                    await store.save_request_response(key, response[0], response[1])
                await store.expire_request_keys(ttl=self.settings.idempotency_ttl)  # at most once a minute
            except Exception as exc:  # noqa: BLE001 - the answer still goes out; only a later retry would miss it
                logger.warning("could not record the answer of request %s: %s", key, exc)
        return response

    async def _recorded_answer(self, store: Any, key: str, handle: Callable[[], Any]) -> tuple[int, bytes]:
        """The answer to a retry whose write an earlier try applied: the request served again with the write's
        recorded result in place of the write; or, for a result too large to record, the answer that try saved
        after its commit (waited for a while), or 409 when that try's server died before saving it."""
        from agentlightning.store.request_keys import request_key_scope

        deadline = anyio.current_time() + RECORDED_ANSWER_WAIT_SECONDS
        delay = 0.02
        while True:
            found = await store.request_response(key, ttl=self.settings.idempotency_ttl)
            if found is not None and found[2] is not None:
                with request_key_scope(key, replay=found[2]):
                    response: tuple[int, bytes] = await handle()
                return response
            if found is not None and found[0] is not None:
                return found[0], found[1]
            if anyio.current_time() >= deadline:
                detail = (
                    "this request was applied already (its Idempotency-Key is recorded), but the answer of the try "
                    "that applied it was lost with the server that served it: read the current state instead"
                )
                return 409, wire.dumps(wire.error_body(detail, "StoreError"))
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def otlp_traces(self, request: Request) -> Response:
        if self.settings.read_only:
            return _error(403, "this server is read-only: OTLP export refused", "PermissionError")
        try:
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype not in (otlp.PROTOBUF, otlp.JSON):
                raise _Error(
                    415,
                    f"unsupported Content-Type {ctype!r}: use {otlp.PROTOBUF} or {otlp.JSON}",
                    "InvalidRequestError",
                )
            limit = self.settings.max_body_bytes
            raw = await _read_body(
                request, limit, otlp.Decompressor(request.headers.get("content-encoding", ""), limit)
            )
            if ctype == otlp.PROTOBUF:
                parsed = otlp.parse_protobuf(raw)
            else:
                data = _parse_json(raw) if raw.strip() else {}
                if not isinstance(data, dict):
                    raise BadInput("OTLP JSON body must be an object")
                parsed = otlp.parse_json(data)
        except _Error as exc:
            return _error(exc.status, exc.detail, exc.error_type)
        except Exception as exc:  # noqa: BLE001 - a body that cannot be read goes back to the client
            status, payload = _exception_response(exc)
            return Response(payload, status_code=status, media_type=wire.JSON_TYPE)
        store = self.store
        assert store is not None

        async def handle() -> tuple[int, bytes]:
            try:
                async with time_limit(self.settings.request_timeout):
                    _, rejected = await otlp.store_spans(store, parsed)
            except Exception as exc:  # noqa: BLE001 - every store error goes back to the client
                return _exception_response(exc)
            message = f"{rejected} span(s) lack agentlightning.rollout_id / agentlightning.attempt_id"
            if ctype == otlp.JSON:
                body = {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}} if rejected else {}
                return 200, wire.dumps(body)
            return 200, otlp.export_response(rejected, message, False)

        # keyed as the REST writes are: a retry sent to another store server is answered, not stored again
        key = request.headers.get(wire.IDEMPOTENCY_HEADER, "").encode("latin-1") or None
        status, payload = await self._keyed(store, "POST", wire.OTLP_TRACES_PATH, key, handle)
        if status != 200:
            return Response(payload, status_code=status, media_type=wire.JSON_TYPE)
        if ctype == otlp.JSON:
            return Response(payload, media_type=wire.JSON_TYPE)
        if "gzip" not in request.headers.get("accept-encoding", ""):
            return Response(payload, media_type=otlp.PROTOBUF)
        response = Response(gzip.compress(payload), media_type=otlp.PROTOBUF)
        response.headers["Content-Encoding"] = "gzip"
        return response


def reads_only(spec: RouteSpec) -> bool:
    """Whether a route only reads the store (what a read-only server answers)."""
    return spec.method == "GET" or spec.name.startswith("query_") or spec.name == "wait_for_rollouts"


class _Endpoint:
    """One REST route as an ASGI app (a class, not a function, so that Starlette's ``Route`` calls it as ASGI)."""

    __slots__ = ("handler", "spec")

    def __init__(self, handler: _App, spec: RouteSpec) -> None:
        self.handler, self.spec = handler, spec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, payload = await self.handler._answer(self.spec, scope, receive)
        headers = [(b"content-type", _JSON_TYPE), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


class _Router:
    """Pure-ASGI dispatch of the REST routes: one dict lookup for fixed paths, a regex per parameterised route,
    and no per-request ``Request`` object. Whatever it does not match (OTLP, unknown paths, wrong methods, lifespan)
    goes to ``fallback``, the Starlette app, which serves the same table with the same first-match order."""

    def __init__(self, fallback: ASGIApp, endpoints: Sequence[Tuple[RouteSpec, ASGIApp]]) -> None:
        import re

        self.fallback = fallback
        self.fixed: Dict[Tuple[str, str], ASGIApp] = {}
        self.patterns: List[Tuple[str, Pattern[str], ASGIApp]] = []
        for spec, app in endpoints:
            path = wire.API_PREFIX + spec.path
            if "{" not in path:
                if any(m == spec.method and p.fullmatch(path) for m, p, _ in self.patterns):
                    raise ValueError(f"route {spec.method} {spec.path} is shadowed by an earlier route")
                self.fixed.setdefault((spec.method, path), app)
                continue
            regex = ""
            for part in re.split(r"(\{[^}]+\})", path):
                if part.startswith("{"):
                    name, _, kind = part[1:-1].partition(":")
                    regex += f"(?P<{name}>{'.*' if kind == 'path' else '[^/]+'})"
                else:
                    regex += re.escape(part)
            self.patterns.append((spec.method, re.compile(regex), app))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            method = scope["method"]
            app = self.fixed.get((method, path))
            if app is not None:
                scope["path_params"] = {}
                await app(scope, receive, send)
                return
            for route_method, pattern, app in self.patterns:
                if route_method == method:
                    match = pattern.fullmatch(path)
                    if match is not None:
                        scope["path_params"] = match.groupdict()
                        await app(scope, receive, send)
                        return
        await self.fallback(scope, receive, send)


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    if status == 405:
        response = _error(405, f"method {request.method} not allowed on {request.url.path}", "InvalidRequestError")
        allow = (getattr(exc, "headers", None) or {}).get("Allow")
        if allow:
            response.headers["Allow"] = allow
        return response
    return _error(status, f"no route {request.method} {request.url.path}", "InvalidRequestError")


def create_app(
    store: StoreSource,
    settings: Optional[ServerSettings] = None,
    *,
    web_apps: Optional[Mapping[str, ASGIApp]] = None,
    **options: Any,
) -> ASGIApp:
    """The ASGI app serving ``store`` (a store, a store URL, or a zero-argument factory called at startup).

    ``options`` are :class:`ServerSettings` fields, used when ``settings`` is not given. ``web_apps`` (name -> ASGI
    app) are served at ``/<name>/``; by default, those installed plugins register (when ``settings.web_apps``).
    """
    from contextlib import asynccontextmanager

    settings = settings or ServerSettings(**options)
    handler = _App(store, settings)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        await handler.open()
        try:
            yield
        finally:
            await handler.close()

    endpoints = [(spec, handler.endpoint(spec)) for spec in ROUTES]
    routes = [Route(wire.API_PREFIX + spec.path, app, methods=[spec.method]) for spec, app in endpoints]
    routes.append(Route(wire.OTLP_TRACES_PATH, handler.otlp_traces, methods=["POST"]))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: _not_found, 405: _not_found})
    app.state.handler = handler
    asgi: ASGIApp = _Router(app, endpoints)
    if settings.token:
        asgi = _Auth(asgi, settings.token)
    if settings.cors_origins:  # outermost, so that preflight requests need no token
        from starlette.middleware.cors import CORSMiddleware

        origins = [o for o in settings.cors_origins if o.strip()]
        asgi = CORSMiddleware(asgi, allow_origins=origins, allow_methods=["*"], allow_headers=["*"])
    if web_apps is None:
        web_apps = installed_web_apps() if settings.web_apps else {}
    if web_apps:  # outside the token check: a web app holds no store data, its pages call the REST API with the token
        asgi = WebAppMounts(asgi, web_apps)
    return asgi


def create_app_from_env() -> ASGIApp:
    """The app as configured by :data:`SETTINGS_ENV` (uvicorn's ``factory=True`` target in worker processes)."""
    raw = json.loads(os.environ[SETTINGS_ENV])
    store_url = raw.pop("store")
    if not raw.get("token"):
        raw["token"] = os.environ.get(wire.TOKEN_ENV) or None
    return create_app(store_url, ServerSettings(**raw))
