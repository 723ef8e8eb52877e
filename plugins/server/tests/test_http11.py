"""The client's HTTP/1.1 transport against scripted servers on 127.0.0.1: body framings, keep-alive, stale
connections, malformed answers and timeouts (asyncio and trio)."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable, List, Set, Tuple, Union

import anyio
import anyio.abc
import pytest
from agentlightning_server.http11 import ConnectionPool, TransportError
from agentlightning_server.protocol import CorkedTransport

pytestmark = pytest.mark.anyio

Answer = Callable[[bytes], bytes]
"""Given one request (head and body), the raw bytes to answer; ``b""`` closes the connection unanswered."""


class _Scripted:
    """A TCP server that reads one request at a time and answers with ``script`` (one entry per request, in
    order, across connections); it counts connections and can close a connection after each answer."""

    def __init__(self, script: List[Answer], close_after: Union[bool, Set[int]] = False) -> None:
        self.script = script
        self.close_after = close_after
        """True: close each connection after one answer; a set: close after the answers to these requests (1-based)."""
        self.connections = 0
        self.requests: List[bytes] = []

    async def _read_request(self, stream: anyio.abc.ByteStream, buffer: bytearray) -> bytes:
        while b"\r\n\r\n" not in buffer:
            buffer += await stream.receive()
        end = buffer.index(b"\r\n\r\n") + 4
        head = bytes(buffer[:end]).lower()
        length = 0
        for line in head.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(buffer) < end + length:
            buffer += await stream.receive()
        request = bytes(buffer[: end + length])
        del buffer[: end + length]
        return request

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        buffer = bytearray()
        async with stream:
            try:
                while self.script:
                    request = await self._read_request(stream, buffer)
                    self.requests.append(request)
                    answer = self.script.pop(0)(request)
                    if not answer:
                        return
                    await stream.send(answer)
                    close = self.close_after
                    if close is True or (isinstance(close, set) and len(self.requests) in close):
                        return
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., Tuple[_Scripted, ConnectionPool]]]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 - anyio's, not Django's extra()
    servers: List[_Scripted] = []
    pools: List[ConnectionPool] = []

    async def serve(stream: anyio.abc.SocketStream) -> None:
        await servers[-1].handle(stream)

    def make(script: List[Answer], close_after: Union[bool, Set[int]] = False) -> Tuple[_Scripted, ConnectionPool]:
        servers.append(_Scripted(script, close_after))
        pools.append(ConnectionPool("127.0.0.1", port, connect_timeout=5.0))
        return servers[-1], pools[-1]

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        yield make
        for pool in pools:
            await pool.aclose()
        tg.cancel_scope.cancel()


def _ok(body: bytes, extra: bytes = b"") -> Answer:
    return lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def _get(path: str = "/x", body: bytes = b"") -> bytes:
    if not body:
        return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


async def test_content_length_bodies_reuse_one_connection(
    scripted: Callable[..., Tuple[_Scripted, ConnectionPool]],
) -> None:
    big = b"y" * 300_000  # several reads
    server, pool = scripted([_ok(b'{"a":1}'), _ok(big), _ok(b"", b"X-Empty: 1\r\n")])
    first = await pool.request(_get(body=b'{"q":1}'), timeout=10)
    assert (first.status, first.body, first.headers["content-length"]) == (200, b'{"a":1}', "7")
    assert (await pool.request(_get(), timeout=10)).body == big
    last = await pool.request(_get(), timeout=10)
    assert last.body == b"" and last.headers["x-empty"] == "1"
    assert server.connections == 1
    assert server.requests[0].endswith(b'{"q":1}')


async def test_chunked_body_with_extensions_and_trailers(
    scripted: Callable[..., Tuple[_Scripted, ConnectionPool]],
) -> None:
    chunked = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    server, pool = scripted([lambda _: chunked, _ok(b"after")])
    response = await pool.request(_get(), timeout=10)
    assert (response.status, response.body) == (201, b"hello world")
    assert (await pool.request(_get(), timeout=10)).body == b"after"  # the connection stayed usable
    assert server.connections == 1


async def test_close_delimited_body_and_connection_close(
    scripted: Callable[..., Tuple[_Scripted, ConnectionPool]],
) -> None:
    server, pool = scripted(
        [
            lambda _: b"HTTP/1.0 200 OK\r\n\r\nuntil-close",
            _ok(b"closing", b"Connection: close\r\n"),
            _ok(b"third"),
        ],
        close_after=True,
    )
    assert (await pool.request(_get(), timeout=10)).body == b"until-close"
    assert (await pool.request(_get(), timeout=10)).body == b"closing"
    assert (await pool.request(_get(), timeout=10)).body == b"third"
    assert server.connections == 3


async def test_no_body_statuses_and_interim_answers(
    scripted: Callable[..., Tuple[_Scripted, ConnectionPool]],
) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
    server, pool = scripted(
        [
            lambda _: b"HTTP/1.1 204 No Content\r\n\r\n",
            lambda _: interim + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
            _ok(b"next"),
        ]
    )
    assert (await pool.request(_get(), timeout=10)).body == b""
    final = await pool.request(_get(), timeout=10)
    assert (final.status, final.body) == (200, b"final")
    assert (await pool.request(_get(), timeout=10)).body == b"next"
    assert server.connections == 1


async def test_stale_keep_alive_connection_is_replaced(
    scripted: Callable[..., Tuple[_Scripted, ConnectionPool]],
) -> None:
    """The server closes a kept-alive connection without answering: the pool retries once on a fresh one."""
    server, pool = scripted([_ok(b"one"), lambda _: b"", _ok(b"two")])
    assert (await pool.request(_get(), timeout=10)).body == b"one"
    assert (await pool.request(_get(), timeout=10)).body == b"two"
    assert server.connections == 2


async def test_answer_cut_short_on_a_reused_connection_is_not_resent(
    scripted: Callable[..., Tuple[_Scripted, ConnectionPool]],
) -> None:
    """Once part of the answer arrived the server has seen the request: the pool must not send it again."""
    server, pool = scripted(
        [_ok(b"one"), lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", _ok(b"never")],
        close_after={2},  # the second answer is cut short by the close
    )
    assert (await pool.request(_get(), timeout=10)).body == b"one"
    with pytest.raises(TransportError, match="closed the connection"):
        await pool.request(_get(), timeout=10)
    assert len(server.requests) == 2 and server.connections == 1


async def test_fresh_connection_closed_unanswered_fails(
    scripted: Callable[..., Tuple[_Scripted, ConnectionPool]],
) -> None:
    _, pool = scripted([lambda _: b""])
    with pytest.raises(TransportError, match="closed the connection"):
        await pool.request(_get(), timeout=10)


@pytest.mark.parametrize(
    "answer",
    [
        b"SPDY/3 200 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno-colon-here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"a" * 70_000,
    ],
)
async def test_malformed_answers(scripted: Callable[..., Tuple[_Scripted, ConnectionPool]], answer: bytes) -> None:
    _, pool = scripted([lambda _: answer])
    with pytest.raises(TransportError):
        await pool.request(_get(), timeout=10)


async def test_silent_server_times_out(scripted: Callable[..., Tuple[_Scripted, ConnectionPool]]) -> None:
    gate = anyio.Event()
    server, pool = scripted([])

    async def silent(stream: anyio.abc.SocketStream) -> None:
        server.connections += 1
        await gate.wait()
        await stream.aclose()

    server.handle = silent  # type: ignore[method-assign]
    with pytest.raises(TransportError, match="no answer"):
        await pool.request(_get(), timeout=0.2)
    gate.set()


async def _trickle(server: _Scripted, pieces: List[bytes], pause: float) -> Callable[..., object]:
    async def handle(stream: anyio.abc.SocketStream) -> None:
        server.connections += 1
        await server._read_request(stream, bytearray())
        for piece in pieces:
            await anyio.sleep(pause)
            await stream.send(piece)
        await anyio.sleep(5)
        await stream.aclose()

    return handle


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_each_wait_for_data_gets_the_whole_timeout(
    scripted: Callable[..., Tuple[_Scripted, ConnectionPool]], framing: str
) -> None:
    """An answer whose pieces each come within the timeout is read, however long it takes in all."""
    server, pool = scripted([])
    if framing == "chunked":
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        pieces = [head, b"2\r\nab\r\n", b"2\r\ncd\r\n", b"0\r\n\r\n"]
    else:
        pieces = [b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", b"ab", b"c", b"d"]
    server.handle = await _trickle(server, pieces, 0.15)  # type: ignore[method-assign]
    response = await pool.request(_get(), timeout=0.4)  # 0.6 s in all
    assert response.body == b"abcd"


async def test_a_stalled_answer_times_out_midway(scripted: Callable[..., Tuple[_Scripted, ConnectionPool]]) -> None:
    server, pool = scripted([])
    pieces = [b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"]
    server.handle = await _trickle(server, pieces, 0.05)  # type: ignore[method-assign]
    with pytest.raises(TransportError, match="no answer"):
        await pool.request(_get(), timeout=0.3)


async def test_the_callers_own_time_limit_is_not_a_transport_error(
    scripted: Callable[..., Tuple[_Scripted, ConnectionPool]],
) -> None:
    server, pool = scripted([])
    server.handle = await _trickle(server, [], 0)  # type: ignore[method-assign]
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.2):
            await pool.request(_get(), timeout=10)


async def test_connection_refused() -> None:
    with anyio.fail_after(30):
        pool = ConnectionPool("127.0.0.1", 9, connect_timeout=2.0)
        with pytest.raises(TransportError, match="cannot connect"):
            await pool.request(_get(), timeout=5)
        await pool.aclose()
        with pytest.raises(TransportError, match="closed"):
            await pool.request(_get(), timeout=5)


async def test_concurrent_requests_respect_max_connections(
    scripted: Callable[..., Tuple[_Scripted, ConnectionPool]],
) -> None:
    server, pool = scripted([_ok(b"%d" % i) for i in range(12)])
    pool.max_connections = 2
    bodies: List[bytes] = []

    async def one() -> None:
        bodies.append((await pool.request(_get(), timeout=10)).body)

    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(one)
    assert sorted(bodies, key=int) == [b"%d" % i for i in range(12)]
    assert server.connections <= 2


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_corked_transport_sends_one_steps_writes_together(anyio_backend: str) -> None:
    """Writes of one event-loop step leave as one, in order; close() sends what is pending first."""
    received = bytearray()
    done = asyncio.Event()
    sizes: List[int] = []

    class Sink(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            received.extend(data)
            sizes.append(len(data))

        def connection_lost(self, exc: object) -> None:
            done.set()

    class Writer(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            corked = CorkedTransport(transport)  # type: ignore[arg-type]
            corked.write(b"head;")
            corked.write(b"")
            corked.writelines([b"body;", bytearray(b"more;")])
            assert corked.get_write_buffer_size() >= len(b"head;body;more;")
            asyncio.get_running_loop().call_later(0.05, lambda: (corked.write(b"last"), corked.close()))

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Writer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(Sink, "127.0.0.1", port)
    with anyio.fail_after(10):
        await done.wait()
    transport.close()
    server.close()
    assert bytes(received) == b"head;body;more;last"
    assert sizes[0] == len(b"head;body;more;")
