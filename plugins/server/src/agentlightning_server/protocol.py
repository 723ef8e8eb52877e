"""uvicorn's HTTP protocol with each response sent in one write.

uvicorn writes a response's head and its body with separate ``transport.write`` calls, so every small answer costs
two ``send`` system calls and wakes the client twice (on loopback each wake-up costs more CPU than the request's
Python work). :class:`CorkedTransport` gathers what one event-loop step writes and hands it to the socket at once.
"""

from __future__ import annotations

import asyncio
from typing import Any, List

__all__ = ["CorkedHTTPProtocol", "CorkedTransport"]


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
except ImportError:  # httptools missing: uvicorn's pure-Python h11 protocol
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]


class CorkedHTTPProtocol(_Base):  # type: ignore[valid-type, misc, unused-ignore]
    """uvicorn's HTTP protocol (httptools' when installed, else h11's) writing through a :class:`CorkedTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CorkedTransport(transport))  # type: ignore[arg-type]
