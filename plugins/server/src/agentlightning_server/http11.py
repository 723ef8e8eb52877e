"""A small keep-alive HTTP/1.1 client over anyio streams (asyncio and trio), made for the store client.

It sends each request (head and body) in one write and reads ``Content-Length``, chunked and read-until-close
bodies. Compared with a general-purpose client it skips everything the store protocol does not need (redirects,
cookies, compression, HTTP/2, header normalisation), which makes a loopback request several times cheaper in CPU.
One :class:`ConnectionPool` serves one event loop.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Dict, List, Optional, Tuple, Union

import anyio
import anyio.abc

from .aio import NATIVE_TIMEOUT, asyncio_loop

__all__ = ["ConnectionPool", "HTTPResponse", "TransportError"]

_READ_SIZE = 256 * 1024
_MAX_HEAD_BYTES = 64 * 1024


Limit = Union[anyio.CancelScope, Any]
"""What bounds one exchange: an anyio cancel scope, or an ``asyncio.Timeout``."""


def _extend(limit: Limit, timeout: float) -> None:
    """Give the next wait for data ``timeout`` seconds from now."""
    if isinstance(limit, anyio.CancelScope):
        limit.deadline = anyio.current_time() + timeout
    else:
        limit.reschedule(asyncio.get_running_loop().time() + timeout)


class TransportError(Exception):
    """No complete HTTP answer: the connection failed, timed out, closed early or spoke malformed HTTP."""


class _ClosedEarly(TransportError):
    """The server closed the connection before its answer was complete."""


class HTTPResponse:
    """Status, lower-cased headers and the whole body of one answer."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _AsyncioStream(asyncio.Protocol):
    """A byte stream straight on an asyncio transport: the same ``send``/``receive``/``aclose`` as anyio's socket
    stream without its per-call checkpoints (used on asyncio for plain TCP, where most calls never wait)."""

    def __init__(self) -> None:
        self._transport: Optional[asyncio.Transport] = None
        self._chunks: List[bytes] = []
        self._eof = False
        self._error: Optional[BaseException] = None
        self._waiter: Optional[asyncio.Future[None]] = None
        self._drained: Optional[asyncio.Future[None]] = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._eof = True
        self._error = exc
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # the stream
    async def send(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise anyio.BrokenResourceError("the connection is closed")
        transport.write(data)
        if self._drained is not None:
            await self._drained

    async def receive(self, max_bytes: int = _READ_SIZE) -> bytes:
        while not self._chunks:
            if self._eof:
                if self._error is not None:
                    raise anyio.BrokenResourceError(str(self._error)) from self._error
                raise anyio.EndOfStream
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        return data

    async def aclose(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _Connection:
    """One keep-alive connection; ``buffer`` holds bytes received beyond the last answer."""

    __slots__ = ("answering", "buffer", "reusable", "stream")

    def __init__(self, stream: Union[anyio.abc.ByteStream, _AsyncioStream]) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.reusable = True
        self.answering = False
        """Whether any byte of the current answer has arrived (then a failed request must not be resent)."""

    async def _fill(self) -> None:
        try:
            data = await self.stream.receive(_READ_SIZE)
        except anyio.EndOfStream:
            raise _ClosedEarly("the server closed the connection") from None
        self.answering = True
        self.buffer += data

    async def _read_until_close(self) -> None:
        while True:
            try:
                data = await self.stream.receive(_READ_SIZE)
            except anyio.EndOfStream:
                return
            self.buffer += data

    async def exchange(self, request: bytes, head_only: bool, scope: Limit, timeout: float) -> HTTPResponse:
        """Send ``request`` and read its answer; each wait for data may take ``timeout`` seconds."""
        buffer = self.buffer
        self.answering = bool(buffer)
        await self.stream.send(request)
        status = 100
        while 100 <= status < 200:  # interim answers (100 Continue, 103 Early Hints) precede the real one
            end = buffer.find(b"\r\n\r\n")
            while end < 0:
                if len(buffer) > _MAX_HEAD_BYTES:
                    raise TransportError("the server sent an over-long response head")
                _extend(scope, timeout)
                await self._fill()
                end = buffer.find(b"\r\n\r\n")
            status, headers, keep_alive = _parse_head(bytes(buffer[:end]))
            del buffer[: end + 4]
            if status == 101:
                raise TransportError("the server switched protocols (101), which this client does not speak")
        if head_only or status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", ""):
            body = await self._read_chunked(scope, timeout)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise TransportError(f"bad Content-Length {headers['content-length']!r}") from None
            while len(buffer) < length:
                _extend(scope, timeout)
                await self._fill()
            body = bytes(buffer[:length])
            del buffer[:length]
        else:  # the body runs until the server closes the connection
            _extend(scope, timeout)
            await self._read_until_close()
            body, keep_alive = bytes(buffer), False
            buffer.clear()
        self.reusable = keep_alive
        return HTTPResponse(status, headers, body)

    async def _read_chunked(self, scope: Limit, timeout: float) -> bytes:
        buffer = self.buffer
        parts: List[bytes] = []
        while True:
            line_end = buffer.find(b"\r\n")
            while line_end < 0:
                _extend(scope, timeout)
                await self._fill()
                line_end = buffer.find(b"\r\n")
            try:
                size = int(bytes(buffer[:line_end]).split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise TransportError("malformed chunk size in a chunked response") from None
            if size == 0:
                del buffer[: line_end + 2]
                while True:  # trailers (usually none), up to the empty line
                    trailer_end = buffer.find(b"\r\n")
                    while trailer_end < 0:
                        _extend(scope, timeout)
                        await self._fill()
                        trailer_end = buffer.find(b"\r\n")
                    line = bytes(buffer[:trailer_end])
                    del buffer[: trailer_end + 2]
                    if not line:
                        return b"".join(parts)
            while len(buffer) < line_end + 2 + size + 2:
                _extend(scope, timeout)
                await self._fill()
            start = line_end + 2
            parts.append(bytes(buffer[start : start + size]))
            del buffer[: start + size + 2]

    async def aclose(self) -> None:
        self.reusable = False
        with anyio.CancelScope(shield=True):
            try:
                await self.stream.aclose()
            except Exception:  # noqa: BLE001, S110 - closing a broken connection: nothing left to do
                pass


def _parse_head(head: bytes) -> Tuple[int, Dict[str, str], bool]:
    """Status, headers (names lower-cased) and whether the connection stays open after this answer."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise TransportError(f"not an HTTP/1.x status line: {lines[0][:100]!r}")
    try:
        status = int(parts[1])
    except ValueError:
        raise TransportError(f"bad status in {lines[0][:100]!r}") from None
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise TransportError(f"malformed response header line {line[:100]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection and (parts[0] != "HTTP/1.0" or "keep-alive" in connection)
    return status, headers, keep_alive


class ConnectionPool:
    """Keep-alive connections to one ``host:port`` for one event loop, at most ``max_connections`` at a time."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool = False,
        ssl_context: Optional[ssl.SSLContext] = None,
        connect_timeout: float = 5.0,
        max_connections: int = 64,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.max_connections = max(1, max_connections)
        self._idle: List[_Connection] = []
        self._active = 0
        self._freed: Optional[anyio.Event] = None
        self._closed = False

    async def _connect(self) -> _Connection:
        try:
            with anyio.fail_after(self.connect_timeout):
                if self.tls:
                    context = self.ssl_context or ssl.create_default_context()
                    stream: Union[anyio.abc.ByteStream, _AsyncioStream] = await anyio.connect_tcp(
                        self.host.strip("[]"), self.port, tls=True, ssl_context=context, tls_hostname=self.host
                    )
                elif asyncio_loop() is not None:
                    loop = asyncio.get_running_loop()
                    _, stream = await loop.create_connection(_AsyncioStream, self.host.strip("[]"), self.port)
                else:
                    stream = await anyio.connect_tcp(self.host.strip("[]"), self.port)
        except TimeoutError:
            raise TransportError(f"connect to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return _Connection(stream)

    async def request(self, request: bytes, *, head_only: bool = False, timeout: float) -> HTTPResponse:
        """Send one encoded request and return its answer. A reused connection that turns out closed before
        answering is replaced by a fresh one at once (servers may drop idle connections at any time)."""
        if self._closed:
            raise TransportError("the connection pool is closed")
        while self._active >= self.max_connections:
            if self._freed is None:
                self._freed = anyio.Event()
            await self._freed.wait()
        self._active += 1
        try:
            while True:
                reused = bool(self._idle)
                connection = self._idle.pop() if reused else await self._connect()
                try:
                    response = await self._exchange(connection, request, head_only, timeout)
                except _ClosedEarly:
                    await connection.aclose()
                    if reused and not connection.answering:
                        continue  # a stale keep-alive connection the server had closed: try a fresh one
                    raise
                except TransportError:
                    await connection.aclose()
                    raise
                except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                    await connection.aclose()
                    if reused and not connection.answering:
                        continue
                    raise TransportError(f"connection to {self.host}:{self.port} failed: {exc!r}") from exc
                except BaseException:
                    await connection.aclose()  # cancelled mid-exchange: the connection's state is unknown
                    raise
                if connection.reusable and not self._closed:
                    self._idle.append(connection)
                else:
                    await connection.aclose()
                return response
        finally:
            self._active -= 1
            if self._freed is not None:
                self._freed.set()
                self._freed = None

    async def _exchange(self, connection: _Connection, request: bytes, head_only: bool, timeout: float) -> HTTPResponse:
        """``connection.exchange`` with each wait for data bounded by ``timeout`` (:class:`TransportError` past it)."""
        if NATIVE_TIMEOUT and asyncio_loop() is not None:
            limit = asyncio.timeout(timeout)  # type: ignore[attr-defined, unused-ignore]
            try:
                async with limit:
                    return await connection.exchange(request, head_only, limit, timeout)
            except TimeoutError:
                if not limit.expired():
                    raise  # not this limit's: an OSError of the socket
                raise TransportError(f"no answer from {self.host}:{self.port} within {timeout}s") from None
        with anyio.CancelScope(deadline=anyio.current_time() + timeout) as scope:
            return await connection.exchange(request, head_only, scope, timeout)
        raise TransportError(f"no answer from {self.host}:{self.port} within {timeout}s")

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.aclose()
