"""Metrics trackers: counters and histograms with labels, behind one interface (upstream v0.3's ``utils.metrics``).

* :class:`InMemoryMetricsBackend` keeps totals and bucket counts and renders them in the Prometheus text exposition
  format (:meth:`~InMemoryMetricsBackend.render_prometheus`) with no dependency: serve that text at ``/metrics``.
* :class:`ConsoleMetricsBackend` logs rates and percentiles over a sliding window.
* :class:`PrometheusMetricsBackend` registers real ``prometheus_client`` metrics (``pip install prometheus-client``).
* :class:`MultiMetricsBackend` fans every call out to several backends.

Metrics are registered first (``register_counter``/``register_histogram``); registering the same metric again is a
no-op, and a different registration under the same name raises ``ValueError``, as does using an unregistered metric or
leaving out one of its labels (extra labels are ignored).
"""

from __future__ import annotations

import bisect
import logging
import math
import re
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

__all__ = [
    "MetricsBackend",
    "InMemoryMetricsBackend",
    "ConsoleMetricsBackend",
    "PrometheusMetricsBackend",
    "MultiMetricsBackend",
    "DEFAULT_BUCKETS",
]

logger = logging.getLogger(__name__)

DEFAULT_BUCKETS: Tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0)
LabelKey = Tuple[Tuple[str, str], ...]


def _normalize_label_names(label_names: Optional[Sequence[str]]) -> Tuple[str, ...]:
    return tuple(label_names) if label_names else ()


def _validate_labels(kind: str, name: str, labels: Optional[Mapping[str, str]], label_names: Sequence[str]) -> LabelKey:
    """The registered labels' values in registration order; ``ValueError`` naming the metric if one is missing."""
    given = labels or {}
    values: List[Tuple[str, str]] = []
    for label in label_names:
        if label not in given:
            raise ValueError(f"Label {label!r} is required for {kind.capitalize()} {name!r}.")
        values.append((label, str(given[label])))
    return tuple(values)


class _Registration:
    __slots__ = ("buckets", "group_level", "kind", "label_names")

    def __init__(
        self, kind: str, label_names: Tuple[str, ...], buckets: Optional[Tuple[float, ...]], group_level: Optional[int]
    ) -> None:
        self.kind = kind
        self.label_names = label_names
        self.buckets = buckets
        self.group_level = group_level

    def same(self, other: _Registration) -> bool:
        return (self.kind, self.label_names, self.buckets) == (other.kind, other.label_names, other.buckets)


class MetricsBackend:
    """The interface of every metrics tracker; subclasses implement the four calls."""

    def __init__(self) -> None:
        self._registrations: Dict[str, _Registration] = {}

    def has_prometheus(self) -> bool:
        """Whether metrics reach a ``prometheus_client`` registry."""
        return False

    def _register(
        self,
        kind: str,
        name: str,
        label_names: Optional[Sequence[str]],
        buckets: Optional[Sequence[float]],
        group_level: Optional[int],
    ) -> bool:
        """Record a registration; False when it repeats an identical one, ValueError when it conflicts."""
        new = _Registration(kind, _normalize_label_names(label_names), tuple(buckets) if buckets else None, group_level)
        old = self._registrations.get(name)
        if old is not None:
            if old.same(new):
                return False
            raise ValueError(f"Metric {name!r} is already registered as a {old.kind} with labels {old.label_names}")
        self._registrations[name] = new
        return True

    def _lookup(self, kind: str, name: str, labels: Optional[Mapping[str, str]]) -> Tuple[_Registration, LabelKey]:
        registration = self._registrations.get(name)
        if registration is None or registration.kind != kind:
            raise ValueError(f"{kind.capitalize()} {name!r} is not registered (call register_{kind} first)")
        return registration, _validate_labels(kind, name, labels, registration.label_names)

    def register_counter(
        self, name: str, label_names: Optional[Sequence[str]] = None, group_level: Optional[int] = None
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement register_counter()")

    def register_histogram(
        self,
        name: str,
        label_names: Optional[Sequence[str]] = None,
        buckets: Optional[Sequence[float]] = None,
        group_level: Optional[int] = None,
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement register_histogram()")

    async def inc_counter(self, name: str, amount: float = 1.0, labels: Optional[Dict[str, str]] = None) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement inc_counter()")

    async def observe_histogram(self, name: str, value: float, labels: Optional[Dict[str, str]] = None) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement observe_histogram()")


# ------------------------------------------------------------------------------------------------ in memory, text


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _prom_name(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_:]", "_", name)


def _labels_text(key: LabelKey, extra: Iterable[Tuple[str, str]] = ()) -> str:
    pairs = [*key, *extra]
    if not pairs:
        return ""
    return "{" + ",".join(f'{_prom_name(k)}="{_escape(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return (
        repr(float(value)) if not float(value).is_integer() else str(int(value)) if abs(value) < 1e15 else repr(value)
    )


class InMemoryMetricsBackend(MetricsBackend):
    """Counters and histograms kept in this process, rendered in the Prometheus text format (version 0.0.4).

    Metric names have ``.`` and other invalid characters replaced by ``_`` in the exposition. Thread-safe.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._counters: Dict[str, Dict[LabelKey, float]] = {}
        self._histograms: Dict[str, Dict[LabelKey, List[float]]] = {}  # bucket counts, +Inf, sum, count

    def register_counter(
        self, name: str, label_names: Optional[Sequence[str]] = None, group_level: Optional[int] = None
    ) -> None:
        if self._register("counter", name, label_names, None, group_level):
            self._counters[name] = {}

    def register_histogram(
        self,
        name: str,
        label_names: Optional[Sequence[str]] = None,
        buckets: Optional[Sequence[float]] = None,
        group_level: Optional[int] = None,
    ) -> None:
        if self._register("histogram", name, label_names, tuple(sorted(buckets or DEFAULT_BUCKETS)), group_level):
            self._histograms[name] = {}

    async def inc_counter(self, name: str, amount: float = 1.0, labels: Optional[Dict[str, str]] = None) -> None:
        self.inc(name, amount, labels)

    def inc(self, name: str, amount: float = 1.0, labels: Optional[Mapping[str, str]] = None) -> None:
        """Synchronous :meth:`inc_counter`."""
        if amount < 0:
            raise ValueError(f"Counter {name!r} can only increase, got amount={amount}")
        _, key = self._lookup("counter", name, labels)
        with self._lock:
            series = self._counters[name]
            series[key] = series.get(key, 0.0) + amount

    async def observe_histogram(self, name: str, value: float, labels: Optional[Dict[str, str]] = None) -> None:
        self.observe(name, value, labels)

    def observe(self, name: str, value: float, labels: Optional[Mapping[str, str]] = None) -> None:
        """Synchronous :meth:`observe_histogram`."""
        registration, key = self._lookup("histogram", name, labels)
        buckets = registration.buckets or DEFAULT_BUCKETS
        with self._lock:
            series = self._histograms[name]
            cells = series.setdefault(key, [0.0] * (len(buckets) + 3))  # buckets, +Inf, sum, count
            cells[bisect.bisect_left(buckets, value)] += 1  # the first bucket whose bound is >= value (le)
            cells[-2] += value
            cells[-1] += 1

    def counter_value(self, name: str, labels: Optional[Mapping[str, str]] = None) -> float:
        """A counter's current total for ``labels`` (0 when never incremented)."""
        _, key = self._lookup("counter", name, labels)
        with self._lock:
            return self._counters[name].get(key, 0.0)

    def render_prometheus(self) -> str:
        """Every metric in the Prometheus text exposition format (``Content-Type: text/plain; version=0.0.4``)."""
        lines: List[str] = []
        with self._lock:
            for name in sorted(self._registrations):
                registration = self._registrations[name]
                prom = _prom_name(name)
                if registration.kind == "counter":
                    lines += [f"# HELP {prom}_total Counter {name}", f"# TYPE {prom}_total counter"]
                    for key, total in sorted(self._counters[name].items()):
                        lines.append(f"{prom}_total{_labels_text(key)} {_number(total)}")
                    continue
                buckets = registration.buckets or DEFAULT_BUCKETS
                lines += [f"# HELP {prom} Histogram {name}", f"# TYPE {prom} histogram"]
                for key, cells in sorted(self._histograms[name].items()):
                    running = 0.0
                    for bound, count in zip([*buckets, math.inf], cells[: len(buckets) + 1], strict=True):
                        running += count
                        lines.append(f"{prom}_bucket{_labels_text(key, [('le', _number(bound))])} {_number(running)}")
                    lines.append(f"{prom}_sum{_labels_text(key)} {_number(cells[-2])}")
                    lines.append(f"{prom}_count{_labels_text(key)} {_number(cells[-1])}")
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------- console


def _format_duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f}ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f}µs"
    return f"{seconds * 1e9:.2f}ns"


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    position = fraction * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


class ConsoleMetricsBackend(MetricsBackend):
    """Logs every metric on one line at most every ``log_interval_seconds``: counters as a rate per second over the
    last ``window_seconds`` (None: since the first event), histograms as p50,p95,p99.

    ``group_level`` merges label sets by their first N labels (None or < 1: everything in one entry per metric).
    """

    def __init__(
        self,
        window_seconds: Optional[float] = 60.0,
        log_interval_seconds: float = 10.0,
        group_level: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.window_seconds = window_seconds
        self.log_interval_seconds = log_interval_seconds
        self.group_level = group_level
        self._events: Dict[Tuple[str, LabelKey], Deque[Tuple[float, float]]] = {}
        self._last_log: Optional[float] = None
        self._lock = threading.Lock()

    def register_counter(
        self, name: str, label_names: Optional[Sequence[str]] = None, group_level: Optional[int] = None
    ) -> None:
        self._register("counter", name, label_names, None, group_level)

    def register_histogram(
        self,
        name: str,
        label_names: Optional[Sequence[str]] = None,
        buckets: Optional[Sequence[float]] = None,
        group_level: Optional[int] = None,
    ) -> None:
        self._register("histogram", name, label_names, buckets, group_level)

    def _truncate_labels_for_logging(self, labels: Mapping[str, str], group_level: Optional[int]) -> Dict[str, str]:
        if group_level is None or group_level < 1:
            return {}
        return dict(list(labels.items())[:group_level])

    def _group_level(self, registration: _Registration) -> Optional[int]:
        return self.group_level if self.group_level is not None else registration.group_level

    def _record(self, kind: str, name: str, value: float, labels: Optional[Mapping[str, str]]) -> None:
        registration, key = self._lookup(kind, name, labels)
        grouped = tuple(self._truncate_labels_for_logging(dict(key), self._group_level(registration)).items())
        now = time.time()
        with self._lock:
            events = self._events.setdefault((name, grouped), deque())
            events.append((now, value))
            self._prune(now)
            due = self._last_log is None or now - self._last_log >= self.log_interval_seconds
            if due:
                self._last_log = now
                line = self._snapshot(now)
        if due and line:
            self._log(line)

    def _prune(self, now: float) -> None:
        if self.window_seconds is None:
            return
        horizon = now - self.window_seconds
        for events in self._events.values():
            while events and events[0][0] < horizon:
                events.popleft()

    def _snapshot(self, now: float) -> str:
        entries: List[str] = []
        for (name, grouped), events in self._events.items():
            if not events:
                continue
            timestamps = [t for t, _ in events]
            values = [v for _, v in events]
            if self._registrations[name].kind == "counter":
                entries.append(self._log_counter(name, dict(grouped), timestamps, values, snapshot_time=now))
            else:
                entries.append(self._log_histogram(name, dict(grouped), values))
        return "  ".join(sorted(entries))

    @staticmethod
    def _entry_name(name: str, labels: Mapping[str, str]) -> str:
        if not labels:
            return name
        return name + "{" + ",".join(f"{k}={v}" for k, v in labels.items()) + "}"

    def _log_counter(
        self,
        name: str,
        labels: Mapping[str, str],
        timestamps: Sequence[float],
        amounts: Sequence[float],
        snapshot_time: float,
    ) -> str:
        start = (
            timestamps[0] if self.window_seconds is None else max(timestamps[0], snapshot_time - self.window_seconds)
        )
        elapsed = max(snapshot_time - start, self.log_interval_seconds or 1e-3)
        return f"{self._entry_name(name, labels)}={sum(amounts) / elapsed:.2f}/s"

    def _log_histogram(self, name: str, labels: Mapping[str, str], values: Sequence[float]) -> str:
        ordered = sorted(values)
        quantiles = ",".join(_format_duration(_percentile(ordered, q)) for q in (0.5, 0.95, 0.99))
        return f"{self._entry_name(name, labels)}={quantiles}"

    def _log(self, line: str) -> None:
        logger.info(line)

    async def inc_counter(self, name: str, amount: float = 1.0, labels: Optional[Dict[str, str]] = None) -> None:
        self._record("counter", name, amount, labels)

    async def observe_histogram(self, name: str, value: float, labels: Optional[Dict[str, str]] = None) -> None:
        self._record("histogram", name, value, labels)


# ------------------------------------------------------------------------------------------------------- prometheus


class PrometheusMetricsBackend(MetricsBackend):
    """Registers ``prometheus_client`` Counters and Histograms (names with ``.`` become ``_``)."""

    def __init__(self) -> None:
        super().__init__()
        try:
            import prometheus_client
        except ImportError:
            raise ImportError(
                "PrometheusMetricsBackend needs prometheus_client: pip install prometheus-client "
                "(or use InMemoryMetricsBackend.render_prometheus(), which needs nothing)"
            ) from None
        self._client: Any = prometheus_client
        self._metrics: Dict[str, Any] = {}
        self._normalized: Dict[str, str] = {}

    def has_prometheus(self) -> bool:
        return True

    def _claim(self, name: str) -> str:
        normalized = _prom_name(name)
        owner = self._normalized.get(normalized)
        if owner is not None and owner != name:
            raise ValueError(f"Metric {name!r} and {owner!r} both become Prometheus metric {normalized!r}")
        self._normalized[normalized] = name
        return normalized

    def register_counter(
        self, name: str, label_names: Optional[Sequence[str]] = None, group_level: Optional[int] = None
    ) -> None:
        normalized = self._claim(name)
        if self._register("counter", name, label_names, None, group_level):
            self._metrics[name] = self._client.Counter(normalized, f"Counter {name}", list(label_names or ()))

    def register_histogram(
        self,
        name: str,
        label_names: Optional[Sequence[str]] = None,
        buckets: Optional[Sequence[float]] = None,
        group_level: Optional[int] = None,
    ) -> None:
        normalized = self._claim(name)
        if self._register("histogram", name, label_names, buckets, group_level):
            kwargs: Dict[str, Any] = {"buckets": list(buckets)} if buckets else {}
            self._metrics[name] = self._client.Histogram(
                normalized, f"Histogram {name}", list(label_names or ()), **kwargs
            )

    def _child(self, kind: str, name: str, labels: Optional[Mapping[str, str]]) -> Any:
        _, key = self._lookup(kind, name, labels)
        metric = self._metrics[name]
        return metric.labels(**dict(key)) if key else metric

    async def inc_counter(self, name: str, amount: float = 1.0, labels: Optional[Dict[str, str]] = None) -> None:
        self._child("counter", name, labels).inc(amount)

    async def observe_histogram(self, name: str, value: float, labels: Optional[Dict[str, str]] = None) -> None:
        self._child("histogram", name, labels).observe(value)


class MultiMetricsBackend(MetricsBackend):
    """Sends every registration and event to each of ``backends`` (at least one)."""

    def __init__(self, backends: Sequence[MetricsBackend]) -> None:
        super().__init__()
        if not backends:
            raise ValueError("MultiMetricsBackend needs at least one backend")
        self.backends = list(backends)

    def has_prometheus(self) -> bool:
        return any(backend.has_prometheus() for backend in self.backends)

    def register_counter(
        self, name: str, label_names: Optional[Sequence[str]] = None, group_level: Optional[int] = None
    ) -> None:
        for backend in self.backends:
            backend.register_counter(name, label_names=label_names, group_level=group_level)

    def register_histogram(
        self,
        name: str,
        label_names: Optional[Sequence[str]] = None,
        buckets: Optional[Sequence[float]] = None,
        group_level: Optional[int] = None,
    ) -> None:
        for backend in self.backends:
            backend.register_histogram(name, label_names=label_names, buckets=buckets, group_level=group_level)

    async def inc_counter(self, name: str, amount: float = 1.0, labels: Optional[Dict[str, str]] = None) -> None:
        for backend in self.backends:
            await backend.inc_counter(name, amount=amount, labels=labels)

    async def observe_histogram(self, name: str, value: float, labels: Optional[Dict[str, str]] = None) -> None:
        for backend in self.backends:
            await backend.observe_histogram(name, value=value, labels=labels)
