"""``PostgresLightningStore``: the shared store engine over a PostgreSQL database."""

from __future__ import annotations

from typing import Any, Callable, Optional

from agentlightning.store.base import LightningStoreCapabilities
from agentlightning.store.engine import EngineLightningStore

from .backend import PostgresBackend
from .url import parse_url

__all__ = ["PostgresLightningStore"]


class PostgresLightningStore(EngineLightningStore):
    """A durable store on PostgreSQL that many processes and hosts can open at once.

    Every write is committed before the call returns. A dequeue never hands one rollout to two workers, span
    sequence ids stay unique, and ``wait_for_rollouts`` wakes on rollouts finished by any process (LISTEN/NOTIFY).
    Of all the processes that open one schema, one runs the timeout scans (the holder of the schema's watchdog
    advisory lock, see :meth:`PostgresBackend.lead_watchdog`); idempotency keys of served requests live in the
    database, so several store servers can serve one run.

    Args:
        url: ``postgresql://user:password@host:port/dbname`` (libpq syntax; store options may ride in the query
            string: ``schema``, ``pool_min``, ``pool_max``, ``pool_timeout``, ``pipeline``, ``inline``,
            ``scan_debounce_seconds``, ``watchdog_interval``).
        schema: the PostgreSQL schema of the store's tables (default ``public``); one run per schema.
        pool_min, pool_max: connections kept open / opened at most by this process.
        pool_timeout: seconds a store call waits for a connection (the server is down or every connection busy)
            before it raises ``StoreUnavailableError``.
        pipeline: ``auto`` (default), ``on`` or ``off``: whether transactions send their opening and last writes
            in pipelines, saving round trips for some CPU; ``auto`` turns them on for a database on another host
            (see :class:`~.backend.PostgresBackend`).
        inline: ``auto`` (default), ``on`` or ``off``: whether a transaction that need not wait runs on the calling
            thread (the event loop's) rather than a worker thread; ``auto`` turns it on for a database on this host.
        scan_debounce_seconds, watchdog_interval, clock: see :class:`~agentlightning.store.engine.EngineLightningStore`.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        schema: Optional[str] = None,
        pool_min: int = 1,
        pool_max: int = 8,
        pool_timeout: float = 30.0,
        pipeline: str = "auto",
        inline: str = "auto",
        scan_debounce_seconds: float = 10.0,
        watchdog_interval: Optional[float] = 1.0,
        clock: Optional[Callable[[], float]] = None,
        **unused: Any,
    ) -> None:
        if unused:
            raise TypeError(f"PostgresLightningStore got unexpected options: {', '.join(sorted(unused))}")
        if url is None:
            raise TypeError("PostgresLightningStore needs a url='postgresql://user@host/dbname'")
        conninfo, options = parse_url(url)
        self._url = url
        backend = PostgresBackend(
            conninfo,
            schema=schema if schema is not None else options.get("schema", "public"),
            pool_min=options.get("pool_min", pool_min),
            pool_max=options.get("pool_max", pool_max),
            connect_timeout=options.get("pool_timeout", pool_timeout),
            pipeline=options.get("pipeline", pipeline),
            inline=options.get("inline", inline),
        )
        super().__init__(
            backend,
            scan_debounce_seconds=options.get("scan_debounce_seconds", scan_debounce_seconds),
            watchdog_interval=options.get("watchdog_interval", watchdog_interval),
            clock=clock,
        )
        self.backend: PostgresBackend = backend
        backend.on_finished = self._notifier.notify
        backend.on_reconnect = self._notifier.wake_all  # finishes announced while the listener was away are lost

    def _watchdog_tick(self, now: float) -> None:
        if self.backend.lead_watchdog():  # one process per schema scans: the holder of its watchdog lock
            super()._watchdog_tick(now)

    def _claim_scan(self) -> bool:
        backend = self.backend
        if self._watchdog is not None and backend.watchdog_tried and not backend.watchdog_leader:
            return False  # the elected watchdog of another process runs the timeout scans
        return super()._claim_scan()

    @property
    def capabilities(self) -> LightningStoreCapabilities:
        return LightningStoreCapabilities(thread_safe=True, async_safe=True, zero_copy=True, otlp_traces=False)

    def reopen_url(self) -> str:
        """The URL this store was opened with: other processes open the same database and schema."""
        if "schema=" in self._url or self.backend.schema == "public":
            return self._url
        return self._url + ("&" if "?" in self._url else "?") + f"schema={self.backend.schema}"

    def __repr__(self) -> str:
        return f"PostgresLightningStore(schema={self.backend.schema!r})"
