"""``LightningStoreClient``: a LightningStore that talks to a store server over HTTP.

One pool of keep-alive HTTP/1.1 connections (:mod:`.http11`) per event loop (asyncio or trio, any thread).
Requests are retried with jittered backoff on connection errors and 5xx answers; non-idempotent writes carry an
``Idempotency-Key`` so a retry is never applied twice. A server that cannot be reached at all (restarting, moved to
another machine) is waited for: ``unavailable_seconds`` (default 120, or ``AGL_STORE_UNAVAILABLE_SECONDS``), with a
log line while waiting, before :class:`StoreUnavailableError` is raised.
Errors come back as the same exception types a local store raises.

Several store servers of one database (``agl store serve --store postgresql://...`` on several hosts) are given as a
list of URLs (or one string, comma-separated): requests are spread over them in turn, and a request whose server
cannot be reached goes at once to the next one, which is skipped for :data:`FAILOVER_SECONDS` afterwards.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import threading
import time
import warnings
import weakref
from typing import Any, Dict, List, Optional, Sequence, Tuple, TypeVar, Union, cast

from agentlightning.store.base import (
    UNSET,
    LightningStore,
    LightningStoreCapabilities,
    LightningStoreStatistics,
    Unset,
)
from agentlightning.store.errors import InvalidRequestError, NotFoundError, StoreClosedError, StoreUnavailableError
from agentlightning.types.core import (
    Attempt,
    AttemptedRollout,
    AttemptStatus,
    EnqueueRolloutRequest,
    PaginatedResult,
    Rollout,
    RolloutConfig,
    RolloutMode,
    RolloutStatus,
    TaskInput,
    Worker,
)
from agentlightning.types.resources import NamedResources, ResourcesUpdate
from agentlightning.types.serialization import resources_to_dict, to_dict
from agentlightning.types.tracer import Span

from . import routes as R
from . import wire
from .http11 import ConnectionPool, TransportError
from .routes import RouteSpec

__all__ = ["LightningStoreClient", "DEFAULT_UNAVAILABLE_SECONDS", "UNAVAILABLE_SECONDS_ENV"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})

DEFAULT_UNAVAILABLE_SECONDS = 120.0
"""How long a request waits for a store server that cannot be reached before it fails (a restart takes this long)."""
UNAVAILABLE_SECONDS_ENV = "AGL_STORE_UNAVAILABLE_SECONDS"
"""Environment variable that sets the default of ``unavailable_seconds`` (runner processes inherit it)."""
WAIT_LOG_SECONDS = 15.0
"""While a server cannot be reached, a log line at most this often."""
UNREACHABLE_POLL_SECONDS = 1.0
"""While a server cannot be reached, it is tried again at least this often (it is back within a second)."""
WAIT_LOG_AFTER_SECONDS = 1.0
"""The first such line once a server was unreachable this long (shorter blips are retried silently)."""
FAILOVER_SECONDS = 5.0
"""With several servers: how long one that could not be reached is passed over (then tried again in turn)."""


def split_urls(url: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """The store server URLs of ``url``: a list, or one string with the URLs separated by commas."""
    parts = url.split(",") if isinstance(url, str) else [str(u) for u in url]
    urls = tuple(part.strip().rstrip("/") for part in parts if part.strip())
    if not urls:
        raise ValueError(f"LightningStoreClient needs at least one server URL, got {url!r}")
    for one in urls:
        if not one.startswith(("http://", "https://")):
            raise ValueError(f"LightningStoreClient needs http:// or https:// URLs, got {one!r}")
    return urls


def default_unavailable_seconds() -> float:
    """``AGL_STORE_UNAVAILABLE_SECONDS`` when set (a number >= 0), else :data:`DEFAULT_UNAVAILABLE_SECONDS`."""
    raw = os.environ.get(UNAVAILABLE_SECONDS_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_UNAVAILABLE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{UNAVAILABLE_SECONDS_ENV} must be a number of seconds, got {raw!r}") from None
    if not value >= 0:
        raise ValueError(f"{UNAVAILABLE_SECONDS_ENV} must be >= 0, got {raw!r}")
    return value


class _NoSuchRoute(Exception):
    """The server has no such route (an older or upstream server): the caller falls back to other requests."""


def _is_missing_route(status: int, data: Any) -> bool:
    """A 404/405 about the route itself, not about a rollout or attempt: upstream's server answers
    ``{"detail": "Not Found"}``, ours names ``InvalidRequestError``; a missing rollout names ``NotFoundError``."""
    if status not in (404, 405):
        return False
    kind = data.get("error_type") if isinstance(data, dict) else None
    return kind in (None, "InvalidRequestError")


def _loop_token() -> Any:
    """The running event loop (asyncio) or run (trio): one connection pool each."""
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # not in asyncio: trio
        import trio

        return trio.lowlevel.current_trio_token()


def _upstream_url(url: Optional[Union[str, Sequence[str]]], server_address: Optional[str]) -> Union[str, Sequence[str]]:
    if server_address is not None:
        if url is not None:
            raise TypeError("pass the URL or server_address (upstream's name), not both")
        warnings.warn(
            "LightningStoreClient(server_address=) is upstream v0.3's name: pass the URL first",
            DeprecationWarning,
            stacklevel=3,
        )
        url = server_address
    if url is None:
        raise TypeError(
            "LightningStoreClient needs the server's URL, e.g. LightningStoreClient('http://127.0.0.1:4747')"
        )
    return url


class LightningStoreClient(LightningStore):
    """The store served at ``url`` (``http://host:port``) by :class:`LightningStoreServer` or ``agl store serve``;
    several servers of one database as a list of URLs or one comma-separated string (see the module docstring).

    ``retry_delays``: seconds to wait before each retry (each scaled by a random factor in [0.5, 1.5]), on
    connection errors and 5xx answers. A server that cannot be reached at all is tried again every second (at most)
    until ``unavailable_seconds`` have passed since the first failed try (default 120 s, or the environment
    variable ``AGL_STORE_UNAVAILABLE_SECONDS``), with a warning after 1 s and every 15 s; then
    :class:`StoreUnavailableError`. So a store server that restarts within that time costs the algorithm and the
    runners a pause, not the run. ``wait_chunk_seconds`` bounds each request of a long :meth:`wait_for_rollouts`.
    Picklable: only the URL and settings travel.
    """

    def __init__(
        self,
        url: Optional[Union[str, Sequence[str]]] = None,
        token: Optional[str] = None,
        *,
        retry_delays: Sequence[float] = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0),
        request_timeout: float = 60.0,
        connect_timeout: float = 5.0,
        wait_chunk_seconds: float = 10.0,
        max_connections: int = 64,
        unavailable_seconds: Optional[float] = None,
        server_address: Optional[str] = None,
        health_retry_delays: Optional[Sequence[float]] = None,
    ) -> None:
        # upstream v0.3's names: server_address= for the URL; health_retry_delays (its health probes) is accepted
        self.urls = split_urls(_upstream_url(url, server_address))
        self.url = self.urls[0]
        """The first server's URL (the only one, usually)."""
        self.token = token or os.environ.get(wire.TOKEN_ENV) or None
        self.retry_delays = tuple(retry_delays)
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.wait_chunk_seconds = wait_chunk_seconds
        self.max_connections = max_connections
        self.unavailable_seconds = default_unavailable_seconds() if unavailable_seconds is None else unavailable_seconds
        if not self.unavailable_seconds >= 0:
            raise ValueError(f"unavailable_seconds must be >= 0, got {unavailable_seconds!r}")
        self._init_runtime()

    @property
    def server_address(self) -> str:
        """Upstream v0.3's base address of the store API (``<url>/v1/agl``)."""
        return self.url + wire.API_PREFIX

    def _init_runtime(self) -> None:
        from urllib.parse import urlsplit

        for url in self.urls:
            if not urlsplit(url).hostname:
                raise ValueError(f"LightningStoreClient needs a host in its URL, got {url!r}")
        self._lock = threading.Lock()
        self._clients: Dict[int, Tuple[weakref.ref[Any], List[Any]]] = {}
        self._turn = itertools.count()
        self._passed_over_until = [0.0] * len(self.urls)
        self._closed = False
        self.answered = False
        """Whether a server has answered this client (this copy of it) yet, with any status: a runner machine's watch
        of the algorithm machine's server starts from the first answer, however short-lived that server was."""
        self._no_batch_spans = False
        self._sequenced_route = True  # False once a server without POST /spans/sequenced (upstream's) answered

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> LightningStoreClient:
        return cls(url, **kwargs)

    def _settings(self) -> Dict[str, Any]:
        return {
            "url": ",".join(self.urls),
            "token": self.token,
            "retry_delays": self.retry_delays,
            "request_timeout": self.request_timeout,
            "connect_timeout": self.connect_timeout,
            "wait_chunk_seconds": self.wait_chunk_seconds,
            "max_connections": self.max_connections,
            "unavailable_seconds": self.unavailable_seconds,
        }

    def __getstate__(self) -> Dict[str, Any]:
        return self._settings()

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.urls = split_urls(state["url"])
        self.url = self.urls[0]
        self._init_runtime()

    def __repr__(self) -> str:
        return f"LightningStoreClient({','.join(self.urls)!r})"

    # -- capabilities and transport ----------------------------------------------------------------------------------

    @property
    def capabilities(self) -> LightningStoreCapabilities:
        return LightningStoreCapabilities(thread_safe=True, async_safe=True, zero_copy=True, otlp_traces=True)

    def otlp_traces_endpoint(self) -> str:
        return self.urls[self._pick()] + wire.OTLP_TRACES_PATH

    def otlp_headers(self) -> Dict[str, str]:
        """Headers an OTLP exporter must send to this store (the bearer token, if any)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def export_otlp(self, body: bytes, content_type: str = "application/x-protobuf") -> bytes:
        """Send one OTLP/HTTP trace export request (``body``, protobuf or JSON) to the store servers; the body of
        the answer. Sent as the other writes are: spread over the servers, retried on the next one when a server
        cannot be reached, and under an ``Idempotency-Key``, so a retry is not stored twice. A refused body raises
        the error the server names (``InvalidRequestError`` for a malformed one)."""
        return await self._exchange(
            "POST", wire.OTLP_TRACES_PATH, body, keyed=True, prefix="", content_type=content_type
        )

    transport = "http11"
    """Which HTTP client carries the requests: ``"http11"`` (:mod:`.http11`) or ``"httpx"``."""

    def _http(self, server: int = 0) -> Any:
        """This event loop's connection pool to server number ``server``."""
        if self._closed:
            raise StoreClosedError(f"{self!r} is closed")
        loop = _loop_token()
        key = id(loop)
        entry = self._clients.get(key)
        if entry is not None and entry[0]() is loop:
            return entry[1][server]
        with self._lock:
            kind = _HttpxTransport if self.transport == "httpx" else _Http11Transport
            pools = [kind(url, self.otlp_headers(), self.connect_timeout, self.max_connections) for url in self.urls]
            for stale in [k for k, (ref, _) in self._clients.items() if ref() is None]:
                del self._clients[stale]  # loops that ended; their connections close with them
            self._clients[key] = (weakref.ref(loop), pools)
            return pools[server]

    def _pick(self, avoid: int = -1) -> int:
        """The server for the next request: the next in turn that is not passed over (nor ``avoid``), if any."""
        count = len(self.urls)
        if count == 1:
            return 0
        start = next(self._turn)
        now = time.monotonic()
        for step in range(count):
            index = (start + step) % count
            if index != avoid and self._passed_over_until[index] <= now:
                return index
        return start % count if start % count != avoid else (start + 1) % count

    def _pass_over(self, server: int) -> bool:
        """Skip ``server`` for a while (it could not be reached); whether another server is left to try now."""
        if len(self.urls) == 1:
            return False
        now = time.monotonic()
        self._passed_over_until[server] = now + FAILOVER_SECONDS
        return any(until <= now for until in self._passed_over_until)

    async def close(self) -> None:
        """Close this event loop's connections (those of other loops are dropped); the client is then unusable."""
        with self._lock:
            self._closed = True
            clients, self._clients = self._clients, {}
        try:
            loop = _loop_token()
        except RuntimeError:  # closed outside any event loop: nothing of this loop to close
            return
        for ref, pools in clients.values():
            if ref() is loop:
                for pool in pools:
                    await pool.aclose()

    async def _call(
        self, route: RouteSpec, *ids: str, _body: Any = None, _timeout: Optional[float] = None, **fields: Any
    ) -> Any:
        """Call ``route`` with the path ``ids`` and the request ``fields`` (UNSET ones left out), or with ``_body``
        as the whole body; returns the answer as the route decodes it."""
        body = route.request(fields) if route.fields is not None else _body
        params = None
        if not route.has_body:
            params = {k: v for k, v in body.items() if v is not None} if body else None
            body = None
        raw = await self._exchange(
            route.method, route.target(*ids), _encode(body), params=params, keyed=route.keyed, timeout=_timeout
        )
        return route.decode(wire.loads(raw) if raw else None)

    async def _exchange(
        self,
        method: str,
        path: str,
        content: Optional[bytes],
        *,
        params: Any = None,
        keyed: bool = False,
        timeout: Optional[float] = None,
        probe: bool = False,
        prefix: str = wire.API_PREFIX,
        content_type: str = wire.JSON_TYPE,
    ) -> bytes:
        """Send ``content`` (encoded JSON, or of ``content_type``) to ``prefix + path`` with retries; the raw body of
        the successful answer. ``probe``: raise :class:`_NoSuchRoute` when the server has no such route."""
        import anyio

        target = prefix + path
        if params:
            from urllib.parse import urlencode

            target += "?" + urlencode(params)
        key = os.urandom(16).hex() if keyed else None  # 128 random bits, as uuid4().hex but cheaper
        server = self._pick()
        limit = self.request_timeout if timeout is None else timeout
        failure: Optional[BaseException] = None
        tries = 0
        unreachable_since: Optional[float] = None
        logged_at = 0.0
        failover = False
        while True:
            if tries and not failover:
                delays = self.retry_delays or (1.0,)
                delay = delays[min(tries, len(delays)) - 1] * random.uniform(0.5, 1.5)
                if unreachable_since is not None:  # a refused connection costs nothing: try again soon
                    budget_left = self.unavailable_seconds - (time.monotonic() - unreachable_since)
                    delay = min(delay, UNREACHABLE_POLL_SECONDS, max(budget_left, 0.0))
                await anyio.sleep(delay)
            tries += 1
            try:
                answer: Tuple[int, bytes] = await self._http(server).request(
                    method, target, content, key, limit, content_type
                )
                status, body = answer
                self.answered = True
            except TransportError as exc:
                failure = exc
                # another server of the same database takes the request at once (the idempotency key makes a
                # write that the lost server may have applied safe to send again)
                failover = self._pass_over(server)
                server = self._pick(avoid=server)
                now = time.monotonic()
                if unreachable_since is None:
                    unreachable_since = now
                waited = now - unreachable_since
                if tries > len(self.retry_delays) and waited >= self.unavailable_seconds:
                    break
                if waited >= WAIT_LOG_AFTER_SECONDS and now - logged_at >= WAIT_LOG_SECONDS:
                    logged_at = now
                    logger.warning(
                        "Store server %s unreachable for %.0f s (%s); waiting up to %.0f s for it to come back",
                        self._names(), waited, exc, self.unavailable_seconds,
                    )  # fmt: skip
                continue
            failover = False
            if unreachable_since is not None and logged_at:
                logger.warning(
                    "Store server %s is back after %.0f s", self.urls[server], time.monotonic() - unreachable_since
                )
            unreachable_since, logged_at = None, 0.0
            if status < 400:
                return body
            try:
                data = wire.loads(body)
            except ValueError:
                data = None
            if probe and _is_missing_route(status, data):
                raise _NoSuchRoute(f"{method} {target}: HTTP {status}")
            failure = wire.exception_from_error(status, data, body[:200].decode("utf-8", "replace"))
            if status not in _RETRY_STATUSES or tries > len(self.retry_delays):
                raise failure
            if len(self.urls) > 1:
                server = self._pick(avoid=server)  # a 5xx: the retry goes to another server
        assert unreachable_since is not None
        raise StoreUnavailableError(
            f"store server {self._names()} unreachable for {time.monotonic() - unreachable_since:.0f} s "
            f"({tries} tries, unavailable_seconds={self.unavailable_seconds:g}): {type(failure).__name__}: {failure}"
        ) from failure

    def _names(self) -> str:
        return self.url if len(self.urls) == 1 else "(any of " + ", ".join(self.urls) + ")"

    # -- rollouts and the queue --------------------------------------------------------------------------------------

    async def start_rollout(
        self,
        input: Any,
        mode: Optional[RolloutMode] = None,
        resources_id: Optional[str] = None,
        config: Optional[RolloutConfig] = None,
        metadata: Optional[Dict[str, Any]] = None,
        worker_id: Optional[str] = None,
    ) -> AttemptedRollout:
        fields = _fields(locals())
        return cast("AttemptedRollout", await self._call(R.START_ROLLOUT, **{**fields, "config": to_dict(config)}))

    async def enqueue_rollout(
        self,
        input: Any,
        mode: Optional[RolloutMode] = None,
        resources_id: Optional[str] = None,
        config: Optional[RolloutConfig] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> Rollout:
        request = EnqueueRolloutRequest(
            input=input,
            mode=mode,
            resources_id=resources_id,
            config=config,
            metadata=metadata,
        )
        rollouts = await self.enqueue_many_rollouts([request])
        if len(rollouts) != 1:
            raise RuntimeError(f"the store server enqueued {len(rollouts)} rollouts instead of 1")
        return rollouts[0]

    async def enqueue_many_rollouts(self, rollouts: Sequence[EnqueueRolloutRequest]) -> Sequence[Rollout]:
        if not rollouts:
            return []
        return cast("Sequence[Rollout]", await self._call(R.ENQUEUE, rollouts=[to_dict(r) for r in rollouts]))

    async def dequeue_rollout(self, worker_id: Optional[str] = None) -> Optional[AttemptedRollout]:
        claimed = await self.dequeue_many_rollouts(limit=1, worker_id=worker_id)
        return claimed[0] if claimed else None

    async def dequeue_many_rollouts(
        self, *, limit: int = 1, worker_id: Optional[str] = None
    ) -> Sequence[AttemptedRollout]:
        if limit <= 0:
            return []
        return cast("Sequence[AttemptedRollout]", await self._call(R.DEQUEUE, limit=limit, worker_id=worker_id))

    async def start_attempt(self, rollout_id: str, worker_id: Optional[str] = None) -> AttemptedRollout:
        return cast("AttemptedRollout", await self._call(R.START_ATTEMPT, rollout_id, worker_id=worker_id))

    async def query_rollouts(
        self,
        *,
        status_in: Optional[Sequence[str]] = None,
        rollout_id_in: Optional[Sequence[str]] = None,
        rollout_id_contains: Optional[str] = None,
        filter_logic: str = "and",
        sort_by: Optional[str] = None,
        sort_order: str = "asc",
        limit: int = -1,
        offset: int = 0,
        status: Optional[Sequence[str]] = None,
        rollout_ids: Optional[Sequence[str]] = None,
        mode_in: Optional[Sequence[Optional[str]]] = None,
        start_time_from: Optional[float] = None,
    ) -> PaginatedResult[Union[Rollout, AttemptedRollout]]:
        if status is not None:
            warnings.warn("query_rollouts(status=...) is deprecated; use status_in", DeprecationWarning, stacklevel=2)
            status_in = status if status_in is None else status_in
        if rollout_ids is not None:
            warnings.warn(
                "query_rollouts(rollout_ids=...) is deprecated; use rollout_id_in", DeprecationWarning, stacklevel=2
            )
            rollout_id_in = rollout_ids if rollout_id_in is None else rollout_id_in
        status_in = None if status_in is None else list(status_in)
        rollout_id_in = None if rollout_id_in is None else list(rollout_id_in)
        fields = _fields(locals(), "status", "rollout_ids", "mode_in", "start_time_from")
        if mode_in is not None:  # sent only when set: a server without the filter sees the request it always did
            fields["mode_in"] = list(mode_in)
        if start_time_from is not None:  # likewise
            fields["start_time_from"] = start_time_from
        return cast("PaginatedResult[Union[Rollout, AttemptedRollout]]", await self._call(R.SEARCH_ROLLOUTS, **fields))

    async def get_rollout_by_id(self, rollout_id: str) -> Optional[Union[Rollout, AttemptedRollout]]:
        return cast("Optional[Union[Rollout, AttemptedRollout]]", await self._call(R.GET_ROLLOUT, rollout_id))

    async def update_rollout(
        self,
        rollout_id: str,
        input: TaskInput | Unset = UNSET,
        mode: Optional[RolloutMode] | Unset = UNSET,
        resources_id: Optional[str] | Unset = UNSET,
        status: RolloutStatus | Unset = UNSET,
        config: Optional[RolloutConfig] | Unset = UNSET,
        metadata: Optional[Dict[str, Any]] | Unset = UNSET,
    ) -> Rollout:
        fields = _fields(locals(), "rollout_id")
        if config is not UNSET and config is not None:
            fields["config"] = to_dict(config)
        return cast("Rollout", await self._call(R.UPDATE_ROLLOUT, rollout_id, **fields))

    async def wait_for_rollouts(self, *, rollout_ids: List[str], timeout: Optional[float] = None) -> List[Rollout]:
        """Waits in requests of at most ``wait_chunk_seconds`` each, so no request outlives the server's limits.

        Each request names only the ids not yet seen finished, so a wait on many rollouts sends and receives each
        finished rollout once rather than once per request; a rollout is returned as it was when first seen
        finished."""
        ids = list(rollout_ids)
        pending = list(dict.fromkeys(ids))
        finished: Dict[str, Rollout] = {}
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        while True:
            remaining = self.wait_chunk_seconds if deadline is None else deadline - time.monotonic()
            chunk = max(0.0, min(self.wait_chunk_seconds, remaining))
            sent = time.monotonic()
            done: List[Rollout] = await self._call(
                R.WAIT_ROLLOUTS, rollout_ids=pending, timeout=chunk, _timeout=chunk + self.request_timeout
            )
            finished.update((r.rollout_id, r) for r in done)
            pending = [i for i in pending if i not in finished]
            if pending and time.monotonic() - sent < chunk:
                # the server stopped waiting early: nothing left that it knows of (ids it does not know need no
                # waiting, as in a local store), or it caps its waits below the chunk; only known ids wait on
                known = {r.rollout_id for r in (await self.query_rollouts(rollout_id_in=pending)).items}
                pending = [i for i in pending if i in known]
            if not pending or (deadline is not None and time.monotonic() >= deadline):
                return [finished[i] for i in ids if i in finished]

    # -- attempts ----------------------------------------------------------------------------------------------------

    async def query_attempts(
        self,
        rollout_id: str,
        *,
        sort_by: Optional[str] = "sequence_id",
        sort_order: str = "asc",
        limit: int = -1,
        offset: int = 0,
    ) -> PaginatedResult[Attempt]:
        return cast(
            "PaginatedResult[Attempt]",
            await self._call(
                R.SEARCH_ATTEMPTS, rollout_id, sort_by=sort_by, sort_order=sort_order, limit=limit, offset=offset
            ),
        )

    async def get_latest_attempt(self, rollout_id: str) -> Optional[Attempt]:
        return cast("Optional[Attempt]", await self._call(R.LATEST_ATTEMPT, rollout_id))

    async def update_attempt(
        self,
        rollout_id: str,
        attempt_id: str,
        status: AttemptStatus | Unset = UNSET,
        worker_id: Optional[str] | Unset = UNSET,
        last_heartbeat_time: Optional[float] | Unset = UNSET,
        metadata: Optional[Dict[str, Any]] | Unset = UNSET,
    ) -> Attempt:
        return cast(
            "Attempt",
            await self._call(R.UPDATE_ATTEMPT, rollout_id, attempt_id, **_fields(locals(), "rollout_id", "attempt_id")),
        )

    # -- spans -------------------------------------------------------------------------------------------------------

    async def add_span(self, span: Span) -> Optional[Span]:
        sent = wire.encode_span(span)
        raw = await self._exchange(R.ADD_SPAN.method, R.ADD_SPAN.target(), sent, keyed=R.ADD_SPAN.keyed)
        if raw == sent:
            return span  # stored as sent (the usual case): no need to decode our own span again
        return cast(Optional[Span], R.ADD_SPAN.decode(wire.loads(raw) if raw else None))

    async def add_many_spans(self, spans: Sequence[Span]) -> Sequence[Span]:
        """One request for all; against a server without the batch route (upstream's), one request per span."""
        if not spans:
            return []
        spans = list(spans)
        if not self._no_batch_spans:
            body = _encode(R.ADD_SPANS.request({"spans": [wire.span_dict(s) for s in spans]}))
            try:
                raw = await self._exchange(
                    R.ADD_SPANS.method, R.ADD_SPANS.target(), body, keyed=R.ADD_SPANS.keyed, probe=True
                )
            except _NoSuchRoute:
                self._no_batch_spans = True  # asked once per client: this server stores spans one by one
            else:
                return [spans[i] for i in R.ADD_SPANS.decode(wire.loads(raw) if raw else None)]
        stored = [await self.add_span(span) for span in spans]
        return [span for span in stored if span is not None]

    async def add_otel_span(
        self, rollout_id: str, attempt_id: str, readable_span: Any, sequence_id: Optional[int] = None
    ) -> Optional[Span]:
        span = Span.from_opentelemetry(readable_span, rollout_id, attempt_id, sequence_id or 0)
        if sequence_id is None and self._sequenced_route:
            # one request: the server allocates the sequence id in the transaction that stores the span
            route = R.ADD_SPAN_SEQUENCED
            try:
                raw = await self._exchange(route.method, route.target(), wire.encode_span(span), keyed=route.keyed)
            except (NotFoundError, InvalidRequestError):
                if await self._has_sequenced_route():
                    raise
                self._sequenced_route = False
            else:
                answer = wire.loads(raw) if raw else None
                if answer is None:
                    return None  # a duplicate
                span.sequence_id = int(answer["sequence_id"])
                return span
        if sequence_id is None:
            span.sequence_id = await self.get_next_span_sequence_id(rollout_id, attempt_id)
        return await self.add_span(span)

    async def _has_sequenced_route(self) -> bool:
        """Whether the server serves POST /spans/sequenced: an empty object is a bad span to ours (400), while a
        server without the route (upstream's) answers 404 or 405."""
        route = R.ADD_SPAN_SEQUENCED
        status, _ = await self._http(self._pick()).request(
            route.method, wire.API_PREFIX + route.target(), b"{}", None, self.request_timeout
        )
        return status not in (404, 405)

    async def get_next_span_sequence_id(self, rollout_id: str, attempt_id: str) -> int:
        return int(await self._call(R.NEXT_SEQUENCE_ID, rollout_id=rollout_id, attempt_id=attempt_id))

    async def get_many_span_sequence_ids(self, rollout_attempt_ids: Sequence[Tuple[str, str]]) -> Sequence[int]:
        if not rollout_attempt_ids:
            return []
        pairs = [[r, a] for r, a in rollout_attempt_ids]
        return list(await self._call(R.SEQUENCE_IDS, rollout_attempt_ids=pairs))

    async def query_spans(
        self,
        rollout_id: str,
        attempt_id: Optional[str] = None,
        *,
        trace_id: Optional[str] = None,
        trace_id_contains: Optional[str] = None,
        span_id: Optional[str] = None,
        span_id_contains: Optional[str] = None,
        parent_id: Optional[str] = None,
        parent_id_contains: Optional[str] = None,
        name: Optional[str] = None,
        name_contains: Optional[str] = None,
        filter_logic: str = "and",
        limit: int = -1,
        offset: int = 0,
        sort_by: Optional[str] = "sequence_id",
        sort_order: str = "asc",
    ) -> PaginatedResult[Span]:
        return cast("PaginatedResult[Span]", await self._call(R.SEARCH_SPANS, **_fields(locals())))

    # -- resources ---------------------------------------------------------------------------------------------------

    async def add_resources(self, resources: NamedResources) -> ResourcesUpdate:
        return cast("ResourcesUpdate", await self._call(R.ADD_RESOURCES, _body=resources_to_dict(resources)))

    async def update_resources(self, resources_id: str, resources: NamedResources) -> ResourcesUpdate:
        return cast(
            "ResourcesUpdate", await self._call(R.UPDATE_RESOURCES, resources_id, _body=resources_to_dict(resources))
        )

    async def get_resources_by_id(self, resources_id: str) -> Optional[ResourcesUpdate]:
        return cast("Optional[ResourcesUpdate]", await self._call(R.GET_RESOURCES, resources_id))

    async def get_latest_resources(self) -> Optional[ResourcesUpdate]:
        return cast("Optional[ResourcesUpdate]", await self._call(R.LATEST_RESOURCES))

    async def query_resources(
        self,
        *,
        resources_id: Optional[str] = None,
        resources_id_contains: Optional[str] = None,
        sort_by: Optional[str] = None,
        sort_order: str = "asc",
        limit: int = -1,
        offset: int = 0,
    ) -> PaginatedResult[ResourcesUpdate]:
        return cast("PaginatedResult[ResourcesUpdate]", await self._call(R.QUERY_RESOURCES, **_fields(locals())))

    # -- workers -----------------------------------------------------------------------------------------------------

    async def query_workers(
        self,
        *,
        status_in: Optional[Sequence[str]] = None,
        worker_id_contains: Optional[str] = None,
        filter_logic: str = "and",
        sort_by: Optional[str] = None,
        sort_order: str = "asc",
        limit: int = -1,
        offset: int = 0,
    ) -> PaginatedResult[Worker]:
        status_in = None if status_in is None else list(status_in)
        return cast("PaginatedResult[Worker]", await self._call(R.SEARCH_WORKERS, **_fields(locals())))

    async def get_worker_by_id(self, worker_id: str) -> Optional[Worker]:
        return cast("Optional[Worker]", await self._call(R.GET_WORKER, worker_id))

    async def update_worker(self, worker_id: str, heartbeat_stats: Dict[str, Any] | Unset = UNSET) -> Worker:
        return cast("Worker", await self._call(R.UPDATE_WORKER, worker_id, heartbeat_stats=heartbeat_stats))

    async def statistics(self) -> LightningStoreStatistics:
        """The served store's statistics, as the server reports them (its ``name`` is the served store's)."""
        return cast(LightningStoreStatistics, dict(await self._call(R.STATISTICS)))


class _Http11Transport:
    """Requests over :mod:`.http11`: each one encoded by hand and sent in one write."""

    def __init__(self, url: str, headers: Dict[str, str], connect_timeout: float, max_connections: int) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        tls = parts.scheme == "https"
        assert parts.hostname is not None
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        port = parts.port or (443 if tls else 80)
        host_header = host if parts.port in (None, 443 if tls else 80) else f"{host}:{port}"
        fixed = {"Host": host_header, "Accept": wire.JSON_TYPE, **headers}
        self.prefix = parts.path.rstrip("/")
        self.head_fields = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self.pool = ConnectionPool(
            host, port, tls=tls, connect_timeout=connect_timeout, max_connections=max_connections
        )

    async def request(
        self,
        method: str,
        target: str,
        content: Optional[bytes],
        key: Optional[str],
        timeout: float,
        content_type: str = wire.JSON_TYPE,
    ) -> Tuple[int, bytes]:
        head = f"{method} {self.prefix}{target} HTTP/1.1\r\n{self.head_fields}"
        if key:
            head += f"{wire.IDEMPOTENCY_HEADER}: {key}\r\n"
        if content is None:
            request = (head + "\r\n").encode()
        else:
            request = (head + f"Content-Type: {content_type}\r\nContent-Length: {len(content)}\r\n\r\n").encode()
            request += content
        response = await self.pool.request(request, timeout=timeout)
        return response.status, response.body

    async def aclose(self) -> None:
        await self.pool.aclose()


class _HttpxTransport:
    """Requests over one pooled ``httpx.AsyncClient``."""

    def __init__(self, url: str, headers: Dict[str, str], connect_timeout: float, max_connections: int) -> None:
        import httpx

        self.httpx = httpx
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.client = httpx.AsyncClient(
            base_url=url,
            headers={"Accept": wire.JSON_TYPE, **headers},
            limits=limits,
            timeout=httpx.Timeout(60.0, connect=connect_timeout),
        )

    async def request(
        self,
        method: str,
        target: str,
        content: Optional[bytes],
        key: Optional[str],
        timeout: float,
        content_type: str = wire.JSON_TYPE,
    ) -> Tuple[int, bytes]:
        headers = {wire.IDEMPOTENCY_HEADER: key} if key else {}
        if content is not None:
            headers["Content-Type"] = content_type
        try:
            response = await self.client.request(method, target, content=content, headers=headers, timeout=timeout)
        except self.httpx.TransportError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


def _fields(scope: Dict[str, Any], *leave_out: str) -> Dict[str, Any]:
    """A client method's arguments (its ``locals()``) as request fields: all but ``self`` and ``leave_out`` (the
    path ids, arguments already folded into others)."""
    return {k: v for k, v in scope.items() if k != "self" and k not in leave_out}


def _encode(body: Any) -> Optional[bytes]:
    if body is None:
        return None
    try:
        return wire.dumps(body)
    except TypeError as exc:
        raise TypeError(f"cannot send to the store server: {exc}") from None
