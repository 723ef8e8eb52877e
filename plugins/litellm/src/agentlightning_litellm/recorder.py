"""Delivers the proxy's spans to the store off the request path: over OTLP when the store ingests it, else directly.

Over OTLP, a store with ``export_otlp`` (the HTTP store client) sends each batch itself: spread over its store
servers, failing over to the next when one cannot be reached, under an idempotency key; another store's OTLP
endpoint is posted to directly.

Recording never fails a call: a store that is down is retried with backoff for ``retry_seconds``; what still cannot
be delivered is logged and dropped.

Calls of several rollouts travel in one batch. When the store refuses a batch (an unknown rollout or attempt, a span
it cannot keep), refusing is not retried: the batch is split by rollout and attempt and each part sent on its own, so
one stale agent's call never costs another call its spans; the refused part is logged (naming its rollout, attempt
and the store's reason), counted in :attr:`SpanRecorder.refused` and dropped.
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import anyio
import attrs
from agentlightning.store.base import LightningStore
from agentlightning.types.tracer import Span
from agentlightning.utils.otlp import PROTOBUF

from .otlp import encode_export_request

__all__ = ["SpanRecorder"]

logger = logging.getLogger(__name__)

_BATCH = 256


class _Rejected(Exception):
    """The store refused the spans themselves: retrying would not help."""


_REFUSALS = (ValueError, TypeError, LookupError)
"""What a store raises for spans it will not take (NotFoundError, InvalidRequestError and ValidationError are
ValueErrors); anything else (unreachable, closed, timed out) is retried."""

Key = Tuple[str, str]


def _split(calls: List[List[Span]]) -> Dict[Key, List[List[Span]]]:
    groups: Dict[Key, List[List[Span]]] = {}
    for call in calls:
        if call:
            groups.setdefault((call[0].rollout_id, call[0].attempt_id), []).append(call)
    return groups


class SpanRecorder:
    """Queue of finished calls' spans and the task that ships them. Run :meth:`run` in a task group."""

    def __init__(
        self,
        store: LightningStore,
        *,
        use_otlp: Optional[bool] = None,
        retry_seconds: float = 60.0,
        timeout: float = 10.0,
    ) -> None:
        self.store = store
        if use_otlp is None:
            use_otlp = bool(store.capabilities.get("otlp_traces"))
        self.otlp_endpoint: Optional[str] = None
        if use_otlp:
            try:
                self.otlp_endpoint = store.otlp_traces_endpoint()
            except NotImplementedError:
                logger.warning("%s says it ingests OTLP but has no endpoint; writing spans directly", store)
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self.sequence_timeout = min(timeout, 2.0)
        self._down_until = float("-inf")
        self._pending: Deque[List[Span]] = collections.deque()
        self._wake = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        self._http: Any = None
        self.delivered = 0
        self.dropped = 0
        self.refused: Dict[Key, int] = {}
        """Spans the store refused, by (rollout id, attempt id) (also counted in ``dropped``)."""

    # -- used by the request handlers --------------------------------------------------------------------------

    async def next_sequence_id(self, rollout_id: str, attempt_id: str) -> Optional[int]:
        """The call's sequence id, or None (logged) when the store cannot be reached now: it is then taken when the
        spans are delivered. A call waits at most 2 s for it, and not at all for 5 s after a failure."""
        if anyio.current_time() < self._down_until:  # do not make every call wait on a store known to be down
            return None
        try:
            with anyio.fail_after(self.sequence_timeout):
                return await self.store.get_next_span_sequence_id(rollout_id, attempt_id)
        except Exception as exc:  # noqa: BLE001 - a store that is down must not fail the LLM call
            self._down_until = anyio.current_time() + 5.0
            logger.warning("No sequence id for rollout %s attempt %s yet (%s); will retry", rollout_id, attempt_id, exc)
            return None

    def submit(self, spans: Sequence[Span], sequence_known: bool = True) -> None:
        """Queue one call's spans (all with the same ids). Never blocks, never raises."""
        batch = list(spans)
        if not sequence_known:
            batch = [attrs.evolve(s, sequence_id=-1) for s in batch]
        self._pending.append(batch)
        self._idle = anyio.Event() if self._idle.is_set() else self._idle
        self._wake.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued span is delivered or dropped; False on timeout."""
        with anyio.move_on_after(timeout):
            await self._idle.wait()
            return True
        return False

    # -- the delivery task ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                if not self._pending:
                    self._idle.set()
                    await self._wake.wait()
                    self._wake = anyio.Event()
                    continue
                calls: List[List[Span]] = []
                while self._pending and sum(map(len, calls)) < _BATCH:
                    calls.append(self._pending.popleft())
                await self._deliver(calls)
        finally:
            if self._http is not None:
                with anyio.CancelScope(shield=True):
                    await self._http.aclose()

    async def _deliver(self, calls: List[List[Span]]) -> None:
        """Deliver a batch; a refused batch of several rollouts or attempts is split and each part sent alone."""
        try:
            await self._deliver_batch(calls)
            return
        except _Rejected as exc:
            groups = _split(calls)
            if len(groups) == 1:
                self._refuse(next(iter(groups)), calls, exc)
                return
        for key, group in groups.items():
            try:
                await self._deliver_batch(group)
            except _Rejected as exc:
                self._refuse(key, group, exc)

    def _refuse(self, key: Key, calls: List[List[Span]], error: Exception) -> None:
        count = sum(map(len, calls))
        self.dropped += count
        self.refused[key] = self.refused.get(key, 0) + count
        logger.error(
            "The store refused %d proxy span(s) of rollout %s attempt %s (dropped; other calls are unaffected): %s",
            count,
            key[0],
            key[1],
            error,
        )

    async def _deliver_batch(self, calls: List[List[Span]]) -> None:
        """Ship ``calls``, retrying while the store is unreachable; raises :class:`_Rejected` if it refuses them."""
        delay = 0.1
        deadline = anyio.current_time() + self.retry_seconds
        error: Exception
        while True:
            try:
                with anyio.fail_after(self.timeout):
                    await self._ship(calls)
                self.delivered += sum(map(len, calls))
                return
            except _Rejected:
                raise
            except Exception as exc:  # noqa: BLE001 - any store failure is retried until the deadline
                error = exc
                if anyio.current_time() + delay > deadline:
                    break
                logger.info("Store unreachable (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
        count = sum(map(len, calls))
        self.dropped += count
        logger.error("Dropped %d proxy span(s) the store did not take: %s: %s", count, type(error).__name__, error)

    async def _ship(self, calls: List[List[Span]]) -> None:
        for i, call in enumerate(calls):
            if call and call[0].sequence_id < 0:
                try:
                    seq = await self.store.get_next_span_sequence_id(call[0].rollout_id, call[0].attempt_id)
                except _REFUSALS as exc:
                    raise _Rejected(f"{type(exc).__name__}: {exc}") from exc
                calls[i] = [attrs.evolve(s, sequence_id=seq) for s in call]
        spans = [s for call in calls for s in call]
        if self.otlp_endpoint is None:
            try:
                await self.store.add_many_spans(spans)
            except _REFUSALS as exc:
                raise _Rejected(f"{type(exc).__name__}: {exc}") from exc
            return
        body = encode_export_request(spans).SerializeToString()
        export = getattr(self.store, "export_otlp", None)
        if callable(export):  # the HTTP store client: spread over its servers, failing over when one is down
            try:
                await export(body, PROTOBUF)
            except _REFUSALS as exc:
                raise _Rejected(f"OTLP export refused: {type(exc).__name__}: {exc}") from exc
            return
        import httpx

        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout)
        headers: Dict[str, str] = {"Content-Type": PROTOBUF}
        otlp_headers = getattr(self.store, "otlp_headers", None)
        if callable(otlp_headers):
            headers.update(otlp_headers())
        response = await self._http.post(self.otlp_endpoint, content=body, headers=headers)
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise RuntimeError(f"OTLP export got HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code >= 400:
            raise _Rejected(f"OTLP export got HTTP {response.status_code}: {response.text[:200]}")
