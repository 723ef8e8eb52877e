"""Idempotency keys kept by the store itself, so that a retried write is applied once across server restarts.

A store server answers a non-idempotent request (enqueue, add span, ...) that carries an ``Idempotency-Key`` inside a
:func:`request_key_scope`. The store's first write transaction of that request also records the key, with the
write's result (same transaction: the key exists exactly when the write committed). A retry of the request, on this
server after a restart or on another server of the same database, finds the key taken: its write is not applied
again (:class:`RequestAlreadyAppliedError`). The server then serves the retry again with the recorded result in
place of the write (:attr:`RequestKey.replay`): the same answer, nothing written twice. A result too large to
record (:data:`MAX_RESULT_BYTES`) is replaced by the server's answer, saved just after the commit.

Backends opt in: a backend whose ``keeps_request_keys`` is true has transactions with the methods of
:class:`RequestKeyTransaction`. Others (the memory store) leave the server to its in-process cache.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Protocol, Tuple

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
        when it was recorded already."""

    def get_request_key(self, key: str) -> Optional[Tuple[float, Optional[int], Optional[bytes], Optional[bytes]]]:
        """``(recorded at, status, body, result)`` of ``key`` (status and body None until its answer is saved)."""

    def save_request_response(self, key: str, status: int, body: bytes) -> None:
        """Attach the answer of the request that recorded ``key``."""

    def expire_request_keys(self, before: float) -> int:
        """Forget the keys recorded before ``before``; how many."""


MAX_RESULT_BYTES = 64 * 1024
"""Results larger than this once encoded (an enqueue of many large inputs) are not recorded with their key: the
server saves its answer after the commit instead (a retry whose first try's server died in between is refused)."""

_MODELS = ("Rollout", "AttemptedRollout", "Attempt", "ResourcesUpdate", "Worker")

SpanLookup = Callable[[str, str, str], Any]
"""``(rollout_id, attempt_id, span_id) -> Span``: how a replay reads back the spans a write stored."""


def _model_class(name: str) -> type:
    from agentlightning.types.core import Attempt, AttemptedRollout, Rollout, Worker
    from agentlightning.types.resources import ResourcesUpdate

    classes = {c.__name__: c for c in (Rollout, AttemptedRollout, Attempt, ResourcesUpdate, Worker)}
    return classes[name]


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    name = type(value).__name__
    if name == "Span":  # stored by the write itself: recorded by reference, read back on a replay
        return {"span": [value.rollout_id, value.attempt_id, value.span_id]}
    if name not in _MODELS:
        raise TypeError(name)
    from agentlightning.types.serialization import to_dict

    return {"model": name, "data": to_dict(value)}


def _decode(value: Any, span: SpanLookup) -> Any:
    if isinstance(value, list):
        return [_decode(item, span) for item in value]
    if isinstance(value, dict):
        if "span" in value:
            return span(*value["span"])
        from agentlightning.types.serialization import from_dict

        return from_dict(value["data"], _model_class(value["model"]))
    return value


def encode_result(result: Any) -> Optional[bytes]:
    """A write's result as recorded with its key (JSON; spans by reference); None when it is not recorded (larger
    than :data:`MAX_RESULT_BYTES`, or of a kind a replay could not give back exactly)."""
    import json

    try:
        raw = json.dumps(_encode(result), separators=(",", ":")).encode()
    except (TypeError, ValueError):
        return None
    return raw if len(raw) <= MAX_RESULT_BYTES else None


def decode_result(raw: bytes, span: SpanLookup) -> Any:
    """What :func:`encode_result` recorded, as the store's records again (spans read with ``span``)."""
    import json

    return _decode(json.loads(raw), span)
