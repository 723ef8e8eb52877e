"""uvicorn's HTTP protocol with each response sent in one write.

uvicorn writes a response's head and its body with separate ``transport.write`` calls, so every small answer costs
two ``send`` system calls and wakes the client twice (on loopback each wake-up costs more CPU than the request's
Python work). :class:`CorkedTransport` gathers what one event-loop step writes and hands it to the socket at once.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, ClassVar, List, Optional

import attrs

__all__ = ["ConnectionLimits", "CorkedHTTPProtocol", "CorkedTransport"]


class CorkedTransport:
    """A transport proxy: writes made during one event-loop step go out together, at the end of that step."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: List[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Send what was written (called by the loop after the writing step, and before closing)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(d) for d in self._pending)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base

    _HTTPTOOLS = True
except ImportError:  # httptools missing: uvicorn's pure-Python h11 protocol, which bounds heads itself
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]

    _HTTPTOOLS = False


@attrs.frozen
class ConnectionLimits:
    """What one connection may cost the server.

    ``max_head_bytes``: request line plus headers (431 beyond); ``max_url_bytes``: the request target (414 beyond);
    ``head_timeout``: seconds a request head may take to arrive, counted from its first byte or, on a new connection,
    from the connect (a silent or slow client is dropped; 408 if it had sent something); ``max_connections``: open
    connections at most (None: half the process's file-descriptor limit, at most 4096); past it the longest-idle
    connection is closed to make room, or, if none is idle, the new one is answered 503 and closed.
    Idle keep-alive connections are closed after uvicorn's ``timeout_keep_alive``."""

    max_head_bytes: int = 64 * 1024
    max_url_bytes: int = 32 * 1024
    head_timeout: float = 10.0
    max_connections: Optional[int] = None

    def connection_cap(self) -> int:
        if self.max_connections is not None:
            return max(1, self.max_connections)
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ImportError, OSError, ValueError):  # no resource module (Windows)
            return 4096
        if soft == getattr(resource, "RLIM_INFINITY", -1) or soft <= 0:
            return 4096
        return max(16, min(4096, soft // 2))


def _limits_from_env() -> ConnectionLimits:
    """The limits of the worker processes of a multi-worker server (in its settings variable), else the defaults."""
    raw = os.environ.get("AGL_SERVER_SETTINGS")
    if not raw:
        return ConnectionLimits()
    settings = json.loads(raw)
    names = [field.name for field in attrs.fields(ConnectionLimits)]
    return ConnectionLimits(**{name: settings[name] for name in names if name in settings})


def _status(code: int, reason: str, detail: str) -> bytes:
    body = ('{"detail":"' + detail + '","error_type":"InvalidRequestError"}').encode()
    return (
        f"HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode() + body


class CorkedHTTPProtocol(_Base):  # type: ignore[valid-type, misc, unused-ignore]
    """uvicorn's HTTP protocol (httptools' when installed, else h11's) writing through a :class:`CorkedTransport`,
    holding each connection to :attr:`limits` (see :class:`ConnectionLimits`; :meth:`with_limits` makes a variant)."""

    limits: ClassVar[ConnectionLimits] = _limits_from_env()

    @classmethod
    def with_limits(cls, limits: ConnectionLimits) -> type:
        return type(cls.__name__, (cls,), {"limits": limits})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CorkedTransport(transport))  # type: ignore[arg-type]
        self._in_head = True
        self._head_bytes = 0
        self._head_tail = b""
        self._url_bytes = 0
        self._head_timer: Optional[asyncio.TimerHandle] = None
        now = self.loop.time()
        self._head_started: Optional[float] = now
        """When the head being received began (its first byte; the connect for the first one), None between heads."""
        self._idle_since: Optional[float] = now
        if _HTTPTOOLS:
            self._arm_head_timer(now + self.limits.head_timeout)
        cap = self.limits.connection_cap()
        if len(self.connections) > cap and not self._evict_idle():
            self._refuse(_status(503, "Service Unavailable", f"too many connections (at most {cap})"))

    def _evict_idle(self) -> bool:
        """Close the connection idle the longest (not this one); False if none is idle."""
        oldest: Any = None
        for other in self.connections:
            since = getattr(other, "_idle_since", None)
            if other is not self and since is not None and (oldest is None or since < oldest._idle_since):
                oldest = other
        if oldest is None:
            return False
        oldest.transport.close()
        self.connections.discard(oldest)
        return True

    def _refuse(self, answer: bytes) -> None:
        self._cancel_head_timer()
        self.transport.write(answer)
        self.transport.close()
        self.connections.discard(self)

    def _arm_head_timer(self, when: float) -> None:
        self._head_timer = self.loop.call_at(when, self._head_timer_fired)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timer_fired(self) -> None:
        """One timer per connection, not one per request: when it fires, the head being received (if any) is
        dropped if it is due, else the timer waits for that head's own due time."""
        self._head_timer = None
        started = self._head_started
        if started is None or not self._in_head or self.transport.is_closing():
            return  # no head on its way: the next one's first byte arms the timer again
        due = started + self.limits.head_timeout
        if self.loop.time() < due:
            self._arm_head_timer(due)
        elif self._head_bytes:
            self._refuse(_status(408, "Request Timeout", "the request head did not arrive in time"))
        else:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._idle_since = None
        if self._in_head and _HTTPTOOLS:
            if self._head_started is None:
                self._head_started = self.loop.time()
                if self._head_timer is None:
                    self._arm_head_timer(self._head_started + self.limits.head_timeout)
            tail = self._head_tail
            joined = tail + data if tail else data
            end = joined.find(b"\r\n\r\n")
            head = self._head_bytes + (len(data) if end < 0 else end + 4 - len(tail))
            if head > self.limits.max_head_bytes:
                self._refuse(
                    _status(
                        431,
                        "Request Header Fields Too Large",
                        f"request head larger than {self.limits.max_head_bytes} bytes",
                    )
                )
                return
            self._head_bytes += len(data)
            self._head_tail = joined[-3:]
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._url_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self.limits.max_url_bytes:
            self._refuse(_status(414, "URI Too Long", f"request target longer than {self.limits.max_url_bytes} bytes"))
            raise _Refused()
        super().on_url(url)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._head_tail = b""
        self._head_started = None  # the connection's head timer stays armed; it finds no head when it fires
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._in_head and not self._head_bytes:
            self._idle_since = self.loop.time()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)


class _Refused(Exception):
    """Raised in a parser callback after the connection was answered and closed: stops the parser."""
