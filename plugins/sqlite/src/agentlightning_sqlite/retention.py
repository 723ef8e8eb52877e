"""Span retention: drop the spans of the oldest finished rollouts once the stored spans pass a limit."""

from __future__ import annotations

import sqlite3
import time
from typing import Optional, Tuple

import attrs

from .schema import FINISHED_SQL, span_totals

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
        spans, span_bytes = span_totals(conn)  # the tracked counters (the backend calls track_span_totals first)
        evicted_rollouts = evicted_spans = 0
        now = time.time()
        while self._over(spans, span_bytes):
            # the partial index walks flagged (rollouts.span_count = 1) finished rollouts in pk order, without sorting
            # every finished rollout; the totals are on their span_counters rows
            rows = conn.execute(
                "SELECT r.rollout_id, c.span_count, c.span_bytes FROM rollouts AS r INDEXED BY rollouts_evictable "
                "JOIN span_counters AS c ON c.rollout_id = r.rollout_id "
                f"WHERE r.span_count > 0 AND r.status IN {FINISHED_SQL} ORDER BY r.pk LIMIT 64"
            ).fetchall()
            if not rows:
                break
            for rollout_id, count, size in rows:
                if not self._over(spans, span_bytes):
                    break
                conn.execute("DELETE FROM spans WHERE rollout_id = ?", (rollout_id,))
                # triggers clear the rollout's "has spans" flag and, tracked, take it off the store-wide totals
                conn.execute(
                    "UPDATE span_counters SET span_count = 0, span_bytes = 0 WHERE rollout_id = ?", (rollout_id,)
                )
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
                [(evicted_rollouts, "evicted_rollouts"), (evicted_spans, "evicted_spans")],
            )
        return evicted_rollouts, evicted_spans
