"""``InMemoryLightningStore``: the shared store engine over :class:`~agentlightning_memory.backend.MemoryBackend`."""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import parse_qsl, urlsplit

from agentlightning.store.backend import StorageTransaction
from agentlightning.store.base import LightningStoreCapabilities
from agentlightning.store.engine import EngineLightningStore
from agentlightning.store.limits import check_span
from agentlightning.store.transitions import Effects
from agentlightning.types.core import PaginatedResult
from agentlightning.types.tracer import Span

from .backend import MemoryBackend, scheduling_point

__all__ = ["InMemoryLightningStore"]


def _url_options(url: str) -> Dict[str, Any]:
    """Options from a ``memory://?name=value&...`` URL."""
    parsed = urlsplit(url)
    if parsed.scheme.lower() != "memory" or parsed.netloc or parsed.path not in ("", "/"):
        raise ValueError(
            f"InMemoryLightningStore opens URLs like memory:// or memory://?memory_budget_bytes=N, got {url!r}"
        )
    options: Dict[str, Any] = {}
    for name, value in parse_qsl(parsed.query, keep_blank_values=True):
        try:
            if name == "memory_budget_bytes":
                options[name] = None if value.lower() == "none" else int(value)
            elif name in ("scan_debounce_seconds", "watchdog_interval"):
                options[name] = None if value.lower() == "none" and name == "watchdog_interval" else float(value)
            else:
                raise ValueError(f"unknown option {name!r} in store URL {url!r}")
        except ValueError as exc:
            raise ValueError(f"bad option {name}={value!r} in store URL {url!r}: {exc}") from None
    return options


def _total_memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not POSIX: psutil when available
        import psutil

        return int(psutil.virtual_memory().total)


def _upstream_memory_options(
    memory_budget_bytes: Optional[int],
    thread_safe: Optional[bool],
    eviction_memory_threshold: Optional[float],
    safe_memory_threshold: Optional[float],
) -> Optional[int]:
    """Map upstream v0.3's constructor options onto ``memory_budget_bytes`` (with a DeprecationWarning)."""
    if thread_safe is not None:
        pass  # this store is always thread-safe and async-safe: upstream's switch has nothing to choose
    if safe_memory_threshold is not None:
        warnings.warn(
            "InMemoryLightningStore(safe_memory_threshold=) is ignored: spans are evicted down to "
            "memory_budget_bytes, oldest finished rollout first",
            DeprecationWarning,
            stacklevel=3,
        )
    if eviction_memory_threshold is None:
        return memory_budget_bytes
    if memory_budget_bytes is not None:
        raise TypeError("pass memory_budget_bytes or eviction_memory_threshold (upstream's name), not both")
    warnings.warn(
        "InMemoryLightningStore(eviction_memory_threshold=) is deprecated: use memory_budget_bytes= (bytes of spans)",
        DeprecationWarning,
        stacklevel=3,
    )
    if isinstance(eviction_memory_threshold, bool) or not isinstance(eviction_memory_threshold, (int, float)):
        raise ValueError(f"eviction_memory_threshold must be a number, got {eviction_memory_threshold!r}")
    if isinstance(eviction_memory_threshold, float) and 0 < eviction_memory_threshold <= 1:
        return int(_total_memory_bytes() * eviction_memory_threshold)
    if eviction_memory_threshold < 1:
        raise ValueError(
            f"eviction_memory_threshold must be a ratio in (0, 1] or bytes >= 1, got {eviction_memory_threshold!r}"
        )
    return int(eviction_memory_threshold)


class InMemoryLightningStore(EngineLightningStore):
    """A fast, process-local store. Data lives as long as the object; nothing is shared with other processes.

    Args:
        memory_budget_bytes: span bytes to keep at most (None: unbounded). Beyond it the spans of finished rollouts
            are evicted, oldest first; querying them then raises ``SpansEvictedError``.
        scan_debounce_seconds: minimum seconds between timeout scans triggered by store calls (0: every call).
        watchdog_interval: seconds between background timeout scans (None: no thread).
        clock: the time source of timestamps and timeouts (see ``EngineLightningStore``; tests pass a manual one).
        span_size_estimator: bytes of one span for the budget (default: a cheap estimate of its attributes).
        url: the ``memory://`` URL the store was opened with (``open_store``); its query string may set
            ``memory_budget_bytes``, ``scan_debounce_seconds`` and ``watchdog_interval`` (``none`` disables it), e.g.
            ``memory://?memory_budget_bytes=1000000000``.

    Upstream v0.3's options are accepted: ``thread_safe`` (this store always is), ``eviction_memory_threshold`` (a
    ratio of the machine's memory or bytes; deprecated for ``memory_budget_bytes``), ``safe_memory_threshold``
    (ignored, deprecated) and ``tracker`` (a metrics backend, kept as ``self.tracker``).
    """

    def __init__(
        self,
        *,
        memory_budget_bytes: Optional[int] = None,
        scan_debounce_seconds: float = 10.0,
        watchdog_interval: Optional[float] = 1.0,
        span_size_estimator: Optional[Callable[[Span], int]] = None,
        url: Optional[str] = None,
        clock: Optional[Callable[[], float]] = None,
        thread_safe: Optional[bool] = None,
        eviction_memory_threshold: Optional[float] = None,
        safe_memory_threshold: Optional[float] = None,
        tracker: Any = None,
        **unused: Any,
    ) -> None:
        memory_budget_bytes = _upstream_memory_options(
            memory_budget_bytes, thread_safe, eviction_memory_threshold, safe_memory_threshold
        )
        self.tracker = tracker
        if unused:
            raise TypeError(f"InMemoryLightningStore got unexpected options: {', '.join(sorted(unused))}")
        if url is not None:
            options = _url_options(url)
            memory_budget_bytes = options.get("memory_budget_bytes", memory_budget_bytes)
            scan_debounce_seconds = options.get("scan_debounce_seconds", scan_debounce_seconds)
            watchdog_interval = options.get("watchdog_interval", watchdog_interval)
        self._memory = MemoryBackend(memory_budget_bytes=memory_budget_bytes, span_size_estimator=span_size_estimator)
        self._span_effects = Effects()  # the inline span transactions' effects: used only under the backend's lock
        super().__init__(
            self._memory,
            scan_debounce_seconds=scan_debounce_seconds,
            watchdog_interval=watchdog_interval,
            clock=clock,
        )

    @property
    def capabilities(self) -> LightningStoreCapabilities:
        return LightningStoreCapabilities(thread_safe=True, async_safe=True, zero_copy=False, otlp_traces=False)

    async def add_otel_span(
        self, rollout_id: str, attempt_id: str, readable_span: Any, sequence_id: Optional[int] = None
    ) -> Optional[Span]:
        """The engine's ``add_otel_span``; a span whose sequence id the store allocates (a tracer's every span) is
        stored inline, without the engine's general transaction plumbing: the same transaction
        (``_store_next``), the same checks, wake-ups and scheduling point. (This store keeps no request keys.)"""
        if sequence_id is not None:
            return await super().add_otel_span(rollout_id, attempt_id, readable_span, sequence_id)
        span = Span.from_opentelemetry(readable_span, rollout_id, attempt_id, 0)  # converted off the lock
        check_span(span)
        if self._closed:
            self._check_open()
        backend = self._memory
        effects = self._span_effects
        finished: List[str] = []
        try:
            with backend._lock:
                try:
                    stored = backend.add_next_span(span, rollout_id, attempt_id, self._clock)
                    if stored is None:  # not the usual case: the engine's transaction
                        stored = self._store_next(backend, span, rollout_id, attempt_id, effects)
                finally:
                    if effects.finished:  # taken while the lock is held: the next writer finds it empty
                        finished, effects.finished = effects.finished, []
        finally:
            if finished:
                self._notifier.notify(finished)
        await scheduling_point()
        return stored

    async def query_spans(
        self, rollout_id: str, attempt_id: Optional[str] = None, **options: Any
    ) -> PaginatedResult[Span]:
        """The engine's ``query_spans``; a rollout's whole span list (of one attempt when given, not ``"latest"``),
        asked for without filters, sort or page (what an algorithm reads after each rollout), is read in one
        transaction without the query plumbing (parsing filters, the pushed-down select): the same spans in the same
        order (``sequence_id``, then insertion), the same timeout scan and scheduling point."""
        plain_attempt = attempt_id is None or (type(attempt_id) is str and attempt_id != "latest")
        if options or type(rollout_id) is not str or not plain_attempt:
            return await super().query_spans(rollout_id, attempt_id, **options)

        def read(tx: StorageTransaction, _: Effects) -> PaginatedResult[Span]:
            spans = tx.get_spans(rollout_id, attempt_id)
            return PaginatedResult(items=spans, limit=-1, offset=0, total=len(spans))

        return await self._run(read, write=False, scan=True)
