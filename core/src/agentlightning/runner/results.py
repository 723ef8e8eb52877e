"""Turn what a rollout method returned into stored spans (upstream v0.3's rules)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, List, Sequence

from agentlightning.types.tracer import Span, SpanCoreFields

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore
    from agentlightning.tracer.base import Tracer

__all__ = ["record_result"]

logger = logging.getLogger(__name__)


def _is_readable_span(obj: Any) -> bool:
    try:
        from opentelemetry.sdk.trace import ReadableSpan
    except ImportError:  # pragma: no cover - the SDK is a core dependency
        return False
    return isinstance(obj, ReadableSpan)


async def record_result(
    result: Any,
    *,
    store: LightningStore,
    tracer: Tracer,
    rollout_id: str,
    attempt_id: str,
    traced: Sequence[Span],
) -> List[Any]:
    """Store what ``result`` adds and return the rollout's spans (``traced``: what the tracer recorded).

    None -> the traced spans; a number -> one reward span added; a list of ReadableSpan / Span / SpanCoreFields ->
    those spans added. Anything else: TypeError (or ValueError for a list mixing kinds).
    """
    if result is None:
        return list(traced)
    if isinstance(result, (bool, int, float)):
        if not isinstance(result, float):
            logger.warning("Reward is not a number, got: %s. Auto converting to float.", type(result).__name__)
        from agentlightning.emitter.reward import emit_reward

        core = emit_reward(float(result), propagate=False)
        sequence_id = await store.get_next_span_sequence_id(rollout_id, attempt_id)
        span = Span.from_core_fields(core, rollout_id=rollout_id, attempt_id=attempt_id, sequence_id=sequence_id)
        await store.add_span(span)
        return [*traced, span]
    if isinstance(result, (list, tuple)):
        items = list(result)
        if not items:
            logger.warning("The rollout returns an empty list; nothing is added to the trace.")
            return []
        if all(_is_readable_span(s) for s in items):
            if type(tracer).__name__ == "OtelTracer":
                logger.warning(
                    "Tracer is already an OpenTelemetry tracer; returning its spans as well may store duplicate spans."
                )
            stored: List[Span] = []
            for readable in items:
                added = await store.add_otel_span(rollout_id, attempt_id, readable)
                if added is None:
                    logger.error("The store did not add span %s of rollout %s", readable.name, rollout_id)
                else:
                    stored.append(added)
            return stored
        if all(isinstance(s, Span) for s in items):
            for span in items:
                await store.add_span(span)
            return items
        if all(isinstance(s, SpanCoreFields) for s in items):
            seqs = await store.get_many_span_sequence_ids([(rollout_id, attempt_id)] * len(items))
            spans = [
                Span.from_core_fields(c, rollout_id=rollout_id, attempt_id=attempt_id, sequence_id=int(q))
                for c, q in zip(items, seqs, strict=True)
            ]
            await store.add_many_spans(spans)
            return spans
        kinds = sorted({type(s).__name__ for s in items})
        raise ValueError(
            "Invalid raw result type. It's expected to be a list of ReadableSpan or Span or SpanCoreFields, "
            f"got a list of {', '.join(kinds)}."
        )
    raise TypeError(
        "Invalid raw result type. It's expected to be none, float, or a list of ReadableSpan, Span or "
        f"SpanCoreFields, got {type(result).__name__}."
    )
