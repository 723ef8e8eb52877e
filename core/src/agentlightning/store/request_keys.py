"""Idempotency keys kept by the store itself, so that a retried write is applied once across server restarts.

A store server answers a non-idempotent request (enqueue, add span, ...) that carries an ``Idempotency-Key`` inside a
:func:`request_key_scope`. The store's first write transaction of that request also records the key, with the
write's result (same transaction: the key exists exactly when the write committed). A retry of the request, on this
server after a restart or on another server of the same database, finds the key taken: its write is not applied
again (:class:`RequestAlreadyAppliedError`). The server then serves the retry again with the recorded result in
place of the write (:attr:`RequestKey.replay`): an answer naming the same records (the rollouts it enqueued, the
attempt it claimed, the span it stored, read back as they are now), nothing written twice. A result too large to
record (:data:`MAX_RESULT_BYTES`) is replaced by the server's answer, saved just after the commit.

Backends opt in: a backend whose ``keeps_request_keys`` is true has transactions with the methods of
:class:`RequestKeyTransaction`. Others (the memory store) leave the server to its in-process cache.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Protocol, Tuple

from .errors import StoreError

__all__ = [
    "RequestKey",
    "RequestAlreadyAppliedError",
    "RequestKeyTransaction",
    "RecordedResponse",
    "request_key_scope",
    "current_request_key",
    "encode_result",
    "decode_result",
    "key_record",
    "MAX_RESULT_BYTES",
]

RecordedResponse = Tuple[Optional[int], Optional[bytes], Optional[bytes]]
"""A key's recorded ``(status, body, result)``: status and body None while the request that took the key has not
answered yet; result (the write's, :func:`encode_result`) None when it was not recorded."""


class RequestAlreadyAppliedError(StoreError):
    """The write of this request was already applied under its idempotency key (by an earlier try)."""


class RequestKey:
    """The idempotency key of the request being served, and what its writes did with it."""

    __slots__ = ("applied_before", "claimed", "key", "replay", "result_recorded")

    def __init__(self, key: str, replay: Optional[bytes] = None) -> None:
        self.key = key
        self.replay = replay
        """The recorded result of the write that took the key: the request's first write returns it, unapplied."""
        self.claimed = False
        """A write of this request committed and recorded the key."""
        self.applied_before = False
        """A write found the key recorded already: an earlier try was applied, this one changed nothing."""
        self.result_recorded = False
        """The write's result was recorded with the key: a retry can be answered from it (no answer to save)."""


_CURRENT: contextvars.ContextVar[Optional[RequestKey]] = contextvars.ContextVar("agl_request_key", default=None)


def current_request_key() -> Optional[RequestKey]:
    """The key of the request being served in this context, while its first write has not committed yet."""
    found = _CURRENT.get()
    return None if found is None or found.claimed else found


@contextmanager
def request_key_scope(key: str, replay: Optional[bytes] = None) -> Iterator[RequestKey]:
    """Store writes made inside this block record ``key`` (the first committed one does); with ``replay`` (a
    recorded result), the first write returns it instead of writing."""
    scope = RequestKey(key, replay)
    token = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(token)


class RequestKeyTransaction(Protocol):
    """What the transactions of a backend with ``keeps_request_keys`` implement."""

    def claim_request_key(self, key: str, now: float, result: Optional[bytes]) -> bool:
        """Record ``key`` (at time ``now``, with the write's encoded ``result``) in this write transaction; False
        when it was recorded already. A backend may instead return True and find the key recorded at its commit:
        its ``run`` then raises :class:`RequestAlreadyAppliedError`, with nothing written."""

    def get_request_key(self, key: str) -> Optional[Tuple[float, Optional[int], Optional[bytes], Optional[bytes]]]:
        """``(recorded at, status, body, result)`` of ``key`` (status and body None until its answer is saved)."""

    def save_request_response(self, key: str, status: int, body: bytes) -> None:
        """Attach the answer of the request that recorded ``key``."""

    def expire_request_keys(self, before: float) -> int:
        """Forget the keys recorded before ``before``; how many."""


MAX_RESULT_BYTES = 64 * 1024
"""Results larger than this once encoded (an enqueue of thousands of rollouts) are not recorded with their key: the
server saves its answer after the commit instead (a retry whose first try's server died in between is refused)."""


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    kind = type(value).__name__
    if kind == "AttemptedRollout":
        return {"attempted": [value.rollout_id, value.attempt.attempt_id]}
    if kind == "Rollout":
        return {"rollout": value.rollout_id}
    if kind == "Attempt":
        return {"attempt": [value.rollout_id, value.attempt_id]}
    if kind == "Span":
        return {"span": [value.rollout_id, value.attempt_id, value.span_id]}
    if kind == "ResourcesUpdate":
        return {"resources": value.resources_id}
    if kind == "Worker":
        return {"worker": value.worker_id}
    raise TypeError(kind)


def _found(record: Any, what: str) -> Any:
    if record is None:
        from .errors import NotFoundError

        raise NotFoundError(f"{what} of the replayed request is no longer stored")
    return record


def _decode(value: Any, tx: Any, spans: Dict[Tuple[str, str], Dict[str, Any]]) -> Any:
    if isinstance(value, list):
        return [_decode(item, tx, spans) for item in value]
    if not isinstance(value, dict):
        return value
    kind, ref = next(iter(value.items()))
    if kind == "attempted":
        from agentlightning.types.core import AttemptedRollout

        rollout = _found(tx.get_rollout(ref[0]), f"rollout {ref[0]}")
        return AttemptedRollout.of(rollout, _found(tx.get_attempt(*ref), f"attempt {ref[1]}"))
    if kind == "rollout":
        return _found(tx.get_rollout(ref), f"rollout {ref}")
    if kind == "attempt":
        return _found(tx.get_attempt(*ref), f"attempt {ref[1]}")
    if kind == "span":
        key = (ref[0], ref[1])
        if key not in spans:
            spans[key] = {s.span_id: s for s in tx.get_spans(ref[0], ref[1])}
        return _found(spans[key].get(ref[2]), f"span {ref[2]}")
    if kind == "resources":
        return _found(tx.get_resources(ref), f"resources {ref}")
    return _found(tx.get_worker(ref), f"worker {ref}")


def encode_result(result: Any) -> Optional[bytes]:
    """A write's result as recorded with its key: JSON naming the records it returned (rollouts, attempts, spans,
    resources, workers by id) and its plain values; None when it is not recorded (larger than
    :data:`MAX_RESULT_BYTES`, or of a kind a replay could not give back)."""
    import json

    try:
        raw = json.dumps(_encode(result), separators=(",", ":")).encode()
    except (TypeError, ValueError):
        return None
    return raw if len(raw) <= MAX_RESULT_BYTES else None


def decode_result(raw: bytes, tx: Any) -> Any:
    """What :func:`encode_result` recorded, the records read back in the transaction ``tx`` (as they are now)."""
    import json

    return _decode(json.loads(raw), tx, {})


def key_record(row: Any) -> Tuple[float, Optional[int], Optional[bytes], Optional[bytes]]:
    """A ``request_keys`` row ``(created, status, body, result)`` as :meth:`RequestKeyTransaction.get_request_key`
    returns it (database bytes types made ``bytes``)."""
    created, status, body, result = row
    return (
        float(created),
        None if status is None else int(status),
        None if body is None else bytes(body),
        None if result is None else bytes(result),
    )
