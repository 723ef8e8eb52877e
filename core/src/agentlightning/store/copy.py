"""Copy a run from one store to another (``agl store copy SRC DST``): SQLite to PostgreSQL and back, memory too.

The rollouts of the source are read page by page with their attempts and spans (the reader of ``agl export``) and
written into the target exactly as they were (ids, statuses, times, sequence ids: the writer of ``agl import``),
``batch_size`` rollouts per transaction. A rollout already in the target is skipped, so a copy that stopped half way
is resumed by running it again, and nothing is written twice. Resources are copied first.

The copy is then verified: the counts of rollouts, attempts, spans and resources, and a checksum of each store's
records (the sum of one SHA-256 per rollout over its rollout, attempts and spans, so that it does not depend on
order) must be equal. Copy a run that is not running: rollouts that change during the copy are reported as a
mismatch.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Dict, Optional, TextIO

import attrs

__all__ = ["CopyStats", "StoreDigest", "copy_store", "digest_store", "KINDS"]


KINDS = ("rollouts", "attempts", "spans", "resources")


@attrs.define(kw_only=True)
class StoreDigest:
    """What :func:`digest_store` measured of a store's records: how many of each kind, and one checksum."""

    counts: Dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(KINDS, 0))
    checksum: str = ""

    def describe(self) -> str:
        return ", ".join(f"{self.counts[kind]} {kind}" for kind in KINDS)


@attrs.define(kw_only=True)
class CopyStats:
    """What a copy wrote (``written``: the import's counts, rollouts and resources already there skipped), how long
    it took, and the digests of both stores afterwards."""

    written: Any
    seconds: float = 0.0
    source: StoreDigest = attrs.field(factory=StoreDigest)
    target: StoreDigest = attrs.field(factory=StoreDigest)

    @property
    def verified(self) -> bool:
        return self.source == self.target


def _canonical(value: Any) -> bytes:
    from agentlightning.types.serialization import to_dict

    return json.dumps(to_dict(value), sort_keys=True, separators=(",", ":"), default=repr).encode()


async def digest_store(store: Any, *, page_size: int = 500) -> StoreDigest:
    """Counts and an order-independent checksum of ``store``'s rollouts, attempts, spans and resources."""
    from agentlightning.training.export import iter_rollout_traces

    digest = StoreDigest()
    total = 0
    async for trace in iter_rollout_traces(store, page_size=page_size):
        one = hashlib.sha256(_canonical(trace.rollout))
        for attempt in sorted(trace.attempts, key=lambda a: a.sequence_id):
            one.update(_canonical(attempt))
        for span in sorted(trace.spans, key=lambda s: (s.attempt_id, s.sequence_id, s.span_id)):
            one.update(_canonical(span))
        total += int.from_bytes(one.digest(), "big")
        digest.counts["rollouts"] += 1
        digest.counts["attempts"] += len(trace.attempts)
        digest.counts["spans"] += len(trace.spans)
    offset = 0
    while True:
        page = await store.query_resources(limit=200, offset=offset)
        for update in page.items:
            total += int.from_bytes(hashlib.sha256(_canonical(update)).digest(), "big")
        digest.counts["resources"] += len(page.items)
        offset += len(page.items)
        if len(page.items) < 200:
            break
    digest.checksum = f"{total % 2**256:064x}"
    return digest


async def copy_store(
    source: Any,
    target: Any,
    *,
    batch_size: int = 200,
    page_size: int = 500,
    progress: bool = False,
    progress_stream: Optional[TextIO] = None,
) -> CopyStats:
    """Copy every rollout (attempts, spans) and resources of ``source`` into ``target``, skipping what ``target``
    holds already, then digest both (see the module docstring). ``target`` must be a store with a storage backend
    (memory, SQLite, PostgreSQL), which is written exactly; ``source`` may be any store, a store server's client
    included."""
    from agentlightning.training.export import (
        ImportStats,
        _import_exact,
        _import_resources,
        _Progress,
        _RolloutRecord,
        iter_rollout_traces,
    )

    backend = getattr(target, "backend", None)
    if backend is None or not hasattr(backend, "run"):
        raise ValueError(
            f"the target of a copy must be a database store (sqlite://, postgresql://, memory), not "
            f"{type(target).__name__}: records are written exactly, ids and times included"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    began = time.perf_counter()
    written = ImportStats()
    bar = _Progress("copy", progress_stream, progress)
    try:
        latest = await source.get_latest_resources()
        updates = []
        offset = 0
        while True:
            page = await source.query_resources(limit=200, offset=offset)
            updates.extend(page.items)
            offset += len(page.items)
            if len(page.items) < 200:
                break
        if updates:
            latest_id = latest.resources_id if latest is not None else None
            await _import_resources(target, updates, latest_id, True, written)
        pending = []
        async for trace in iter_rollout_traces(source, page_size=page_size, on_total=bar.set_total):
            pending.append(_RolloutRecord(trace.rollout, trace.attempts, trace.spans))
            if len(pending) >= batch_size:
                await _import_exact(backend, pending, written)
                bar.advance(len(pending))
                pending = []
        if pending:
            await _import_exact(backend, pending, written)
            bar.advance(len(pending))
    finally:
        bar.close()
    stats = CopyStats(written=written)
    stats.source = await digest_store(source, page_size=page_size)
    stats.target = await digest_store(target, page_size=page_size)
    stats.seconds = time.perf_counter() - began
    return stats
