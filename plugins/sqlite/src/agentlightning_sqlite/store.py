"""``SqliteLightningStore``: the shared store engine over one SQLite file."""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Tuple, Union

import anyio.to_thread
from agentlightning.store.base import LightningStoreCapabilities
from agentlightning.store.engine import EngineLightningStore

from .backend import SqliteBackend
from .retention import Retention
from .url import parse_url

__all__ = ["SqliteLightningStore"]


class SqliteLightningStore(EngineLightningStore):
    """A durable store in one SQLite file that many threads and processes can open at once.

    Every write is committed before the call returns. The algorithm, runner processes and server workers may all
    open the same file: a dequeue never hands one rollout to two workers, span sequence ids stay unique, and lock
    contention is waited out (up to ``lock_timeout``, then ``StoreUnavailableError``).

    Args:
        path: the database file (created when missing). Alternatively ``url="sqlite:///run.db"``.
        synchronous: ``"NORMAL"`` (default; WAL commits survive a crash of the process) or ``"FULL"`` (also a power
            cut, at the cost of an fsync per commit).
        busy_timeout: seconds SQLite waits for another process's lock before the store retries.
        lock_timeout: seconds after which a still-locked database raises ``StoreUnavailableError``.
        max_spans, max_span_bytes: retention limits (None: keep everything). Past them, the spans of the oldest
            finished rollouts are deleted; querying those raises ``SpansEvictedError``.
        scan_debounce_seconds, watchdog_interval, clock: see :class:`~agentlightning.store.engine.EngineLightningStore`.
        url: a ``sqlite:`` URL (options may ride in its query string); used by ``open_store``.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike[str], None] = None,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        lock_timeout: float = 120.0,
        max_spans: Optional[int] = None,
        max_span_bytes: Optional[int] = None,
        scan_debounce_seconds: float = 10.0,
        watchdog_interval: Optional[float] = 1.0,
        url: Optional[str] = None,
        clock: Optional[Callable[[], float]] = None,
        **unused: Any,
    ) -> None:
        if unused:
            raise TypeError(f"SqliteLightningStore got unexpected options: {', '.join(sorted(unused))}")
        options: dict[str, Any] = {}
        if url is not None:
            if path is not None:
                raise TypeError("SqliteLightningStore takes a path or a url, not both")
            path, options = parse_url(url)
        if path is None:
            raise TypeError("SqliteLightningStore needs a path (or url='sqlite:///file.db')")
        synchronous = options.get("synchronous", synchronous)
        backend = SqliteBackend(
            path,
            synchronous=synchronous,
            busy_timeout=options.get("busy_timeout", busy_timeout),
            lock_timeout=options.get("lock_timeout", lock_timeout),
            retention=Retention(
                max_spans=options.get("max_spans", max_spans),
                max_span_bytes=options.get("max_span_bytes", max_span_bytes),
            ),
        )
        super().__init__(
            backend,
            scan_debounce_seconds=options.get("scan_debounce_seconds", scan_debounce_seconds),
            watchdog_interval=options.get("watchdog_interval", watchdog_interval),
            clock=clock,
        )
        self.backend: SqliteBackend = backend

    @property
    def path(self) -> str:
        return self.backend.path

    @property
    def capabilities(self) -> LightningStoreCapabilities:
        return LightningStoreCapabilities(thread_safe=True, async_safe=True, zero_copy=True, otlp_traces=False)

    def reopen_url(self) -> str:
        """``sqlite:///<absolute path>``: other processes open this same file."""
        from urllib.parse import quote

        return "sqlite:///" + quote(os.path.abspath(self.path))

    async def compact(self) -> Tuple[int, int]:
        """Apply the retention limits now (they are also applied after every write that may exceed them);
        returns the (rollouts, spans) evicted."""
        self._check_open()
        return await anyio.to_thread.run_sync(self.backend.compact)

    def __repr__(self) -> str:
        return f"SqliteLightningStore({self.path!r})"
