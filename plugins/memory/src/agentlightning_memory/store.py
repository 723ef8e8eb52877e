"""``InMemoryLightningStore``: the shared store engine over :class:`~agentlightning_memory.backend.MemoryBackend`."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional
from urllib.parse import parse_qsl, urlsplit

from agentlightning.store.base import LightningStoreCapabilities
from agentlightning.store.engine import EngineLightningStore
from agentlightning.types.tracer import Span

from .backend import MemoryBackend

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
        **unused: Any,
    ) -> None:
        if unused:
            raise TypeError(f"InMemoryLightningStore got unexpected options: {', '.join(sorted(unused))}")
        if url is not None:
            options = _url_options(url)
            memory_budget_bytes = options.get("memory_budget_bytes", memory_budget_bytes)
            scan_debounce_seconds = options.get("scan_debounce_seconds", scan_debounce_seconds)
            watchdog_interval = options.get("watchdog_interval", watchdog_interval)
        super().__init__(
            MemoryBackend(memory_budget_bytes=memory_budget_bytes, span_size_estimator=span_size_estimator),
            scan_debounce_seconds=scan_debounce_seconds,
            watchdog_interval=watchdog_interval,
            clock=clock,
        )

    @property
    def capabilities(self) -> LightningStoreCapabilities:
        return LightningStoreCapabilities(thread_safe=True, async_safe=True, zero_copy=False, otlp_traces=False)
