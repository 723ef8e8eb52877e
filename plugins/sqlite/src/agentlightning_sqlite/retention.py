"""Span retention: drop the spans of the oldest finished rollouts once the stored spans pass a limit."""

from __future__ import annotations

import sqlite3
import time
from typing import Optional, Tuple

import attrs

from .schema import FINISHED_SQL

__all__ = ["Retention"]


def _positive(instance: object, attribute: attrs.Attribute[Optional[int]], value: Optional[int]) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{attribute.name} must be None or an integer >= 0, got {value!r}")


@attrs.define(frozen=True)
class Retention:
    """Limits on the spans kept; ``None`` means no limit. Only spans of finished rollouts are ever evicted, the
    oldest rollouts (by creation) first, all spans of a rollout at once."""

    max_spans: Optional[int] = attrs.field(default=None, validator=_positive)
    max_span_bytes: Optional[int] = attrs.field(default=None, validator=_positive)

    @property
    def enabled(self) -> bool:
        return self.max_spans is not None or self.max_span_bytes is not None

    def _over(self, spans: int, span_bytes: int) -> bool:
        return (self.max_spans is not None and spans > self.max_spans) or (
            self.max_span_bytes is not None and span_bytes > self.max_span_bytes
        )

    def compact(self, conn: sqlite3.Connection) -> Tuple[int, int]:
        """Evict inside the caller's write transaction until within limits; returns (rollouts, spans) evicted."""
        totals = dict(conn.execute("SELECT name, value FROM counters WHERE name IN ('spans', 'span_bytes')"))
        spans, span_bytes = int(totals["spans"]), int(totals["span_bytes"])
        evicted_rollouts = evicted_spans = 0
        now = time.time()
        while self._over(spans, span_bytes):
            rows = conn.execute(
                "SELECT rollout_id, span_count, span_bytes FROM rollouts "
                f"WHERE span_count > 0 AND status IN {FINISHED_SQL} ORDER BY pk LIMIT 64"
            ).fetchall()
            if not rows:
                break
            for rollout_id, count, size in rows:
                if not self._over(spans, span_bytes):
                    break
                conn.execute("DELETE FROM spans WHERE rollout_id = ?", (rollout_id,))
                conn.execute("UPDATE rollouts SET span_count = 0, span_bytes = 0 WHERE rollout_id = ?", (rollout_id,))
                conn.execute(
                    "INSERT INTO evictions (rollout_id, spans, bytes, evicted_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (rollout_id) DO UPDATE SET spans = spans + excluded.spans, "
                    "bytes = bytes + excluded.bytes, evicted_at = excluded.evicted_at",
                    (rollout_id, count, size, now),
                )
                spans -= count
                span_bytes -= size
                evicted_rollouts += 1
                evicted_spans += count
        if evicted_rollouts:
            conn.executemany(
                "UPDATE counters SET value = value + ? WHERE name = ?",
                [
                    (-evicted_spans, "spans"),
                    (span_bytes - int(totals["span_bytes"]), "span_bytes"),
                    (evicted_rollouts, "evicted_rollouts"),
                    (evicted_spans, "evicted_spans"),
                ],
            )
        return evicted_rollouts, evicted_spans
