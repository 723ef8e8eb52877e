"""Refuse every network connection except to 127.0.0.1 / localhost, and record the refused attempts.

``install()`` patches ``socket.socket.connect`` (and ``connect_ex``), ``socket.create_connection`` and
``socket.getaddrinfo``, which every Python HTTP client (requests/urllib3, httpx, aiohttp, grpc's Python side) goes
through to reach a remote host.
"""

from __future__ import annotations

import socket
from typing import Any, List, Tuple

LOCAL = {"127.0.0.1", "localhost", "::1"}
attempts: List[Tuple[str, Any]] = []

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _host(address: Any) -> Any:
    return address[0] if isinstance(address, tuple) else address


def _check(kind: str, address: Any) -> None:
    host = _host(address)
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str) or host not in LOCAL:
        attempts.append((kind, address))
        raise ConnectionRefusedError(f"socket guard: no connection to {address!r} allowed")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check("connect", address)
    return _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check("connect_ex", address)
    return _connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None:
        _check("getaddrinfo", (host,))
    return _getaddrinfo(host, *args, **kwargs)


def install() -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo
