"""``InMemoryLightningStore``: the shared store engine over :class:`~agentlightning_memory.backend.MemoryBackend`."""

from __future__ import annotations

from typing import Any, Callable, Optional

from agentlightning.store.base import LightningStoreCapabilities
from agentlightning.store.engine import EngineLightningStore
from agentlightning.types.tracer import Span

from .backend import MemoryBackend

__all__ = ["InMemoryLightningStore"]


class InMemoryLightningStore(EngineLightningStore):
    """A fast, process-local store. Data lives as long as the object; nothing is shared with other processes.

    Args:
        memory_budget_bytes: span bytes to keep at most (None: unbounded). Beyond it the spans of finished rollouts
            are evicted, oldest first; querying them then raises ``SpansEvictedError``.
        scan_debounce_seconds: minimum seconds between timeout scans triggered by store calls (0: every call).
        watchdog_interval: seconds between background timeout scans (None: no thread).
        span_size_estimator: bytes of one span for the budget (default: a cheap estimate of its attributes).
        url: the ``memory://`` URL the store was opened with (accepted for ``open_store``; carries no options).
    """

    def __init__(
        self,
        *,
        memory_budget_bytes: Optional[int] = None,
        scan_debounce_seconds: float = 10.0,
        watchdog_interval: Optional[float] = 1.0,
        span_size_estimator: Optional[Callable[[Span], int]] = None,
        url: Optional[str] = None,
        **unused: Any,
    ) -> None:
        if unused:
            raise TypeError(f"InMemoryLightningStore got unexpected options: {', '.join(sorted(unused))}")
        if url is not None and not url.lower().startswith("memory://"):
            raise ValueError(f"InMemoryLightningStore opens memory:// URLs, got {url!r}")
        super().__init__(
            MemoryBackend(memory_budget_bytes=memory_budget_bytes, span_size_estimator=span_size_estimator),
            scan_debounce_seconds=scan_debounce_seconds,
            watchdog_interval=watchdog_interval,
        )

    @property
    def capabilities(self) -> LightningStoreCapabilities:
        return LightningStoreCapabilities(thread_safe=True, async_safe=True, zero_copy=False, otlp_traces=False)
