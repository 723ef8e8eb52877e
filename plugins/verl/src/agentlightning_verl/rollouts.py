"""Store side of a step: enqueue ``n`` rollouts per sample under one data id, wait, and adapt spans to samples."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, List, Optional, Sequence, Set

import anyio
from agentlightning.store.base import LightningStore
from agentlightning.training import RolloutSample, sample_from_triplets
from agentlightning.types.core import EnqueueRolloutRequest, Rollout, RolloutConfig

__all__ = ["enqueue_groups", "wait_for_all", "rollout_samples", "spans_to_triplets"]

logger = logging.getLogger(__name__)


async def enqueue_groups(
    store: LightningStore,
    samples: Sequence[Any],
    *,
    n: int,
    mode: str,
    resources_id: Optional[str],
    config: RolloutConfig,
    step: int,
) -> List[Rollout]:
    """Enqueue every sample ``n`` times (one ``enqueue_many_rollouts`` call); copies share
    ``metadata["data_id"]``, a fresh id per sample, which groups them for advantages."""
    requests = []
    for sample in samples:
        data_id = uuid.uuid4().hex
        for _ in range(n):
            requests.append(
                EnqueueRolloutRequest(
                    input=sample,
                    mode=mode,  # type: ignore[arg-type]
                    resources_id=resources_id,
                    config=config,
                    metadata={"data_id": data_id, "is_train": mode == "train", "step": step},
                )
            )
    return list(await store.enqueue_many_rollouts(requests))


async def wait_for_all(store: LightningStore, rollout_ids: Sequence[str], *, timeout: float, poll: float) -> Set[str]:
    """Wait until every rollout finished or ``timeout`` seconds passed; return the ids still unfinished."""
    pending = set(rollout_ids)
    deadline = time.monotonic() + timeout
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        done = await store.wait_for_rollouts(rollout_ids=sorted(pending), timeout=min(poll, left))
        pending -= {r.rollout_id for r in done}
    if pending:
        logger.warning("%d of %d rollouts did not finish in %.0f s; they are left out", len(pending),
                       len(rollout_ids), timeout)  # fmt: skip
    return pending


def spans_to_triplets(spans: Sequence[Any], adapter: Any) -> List[Any]:
    """Triplets by ``adapter``; when it finds no token ids (say, client-side spans are absent because calls went
    through the LLM proxy), core's proxy-span adapter is tried."""
    from agentlightning.adapter import LlmProxyTraceToTriplet

    triplets = list(adapter.adapt(list(spans))) if adapter is not None else []
    if not any(_has_ids(t) for t in triplets):
        proxy_triplets = list(LlmProxyTraceToTriplet().adapt(list(spans)))
        if any(_has_ids(t) for t in proxy_triplets):
            return proxy_triplets
    return triplets


def _has_ids(triplet: Any) -> bool:
    prompt = triplet.prompt.get("token_ids") if isinstance(triplet.prompt, dict) else None
    response = triplet.response.get("token_ids") if isinstance(triplet.response, dict) else None
    return bool(prompt) and bool(response)


async def rollout_samples(
    store: LightningStore,
    rollouts: Sequence[Rollout],
    adapter: Any,
    *,
    skip: Set[str] = frozenset(),  # type: ignore[assignment]
) -> List[RolloutSample]:
    """The latest attempt's spans of each finished rollout, adapted to a :class:`RolloutSample` (grouped by
    ``metadata["data_id"]``). Failed rollouts are kept: their reward is filled in later."""
    out: List[RolloutSample] = []
    for rollout in rollouts:
        if rollout.rollout_id in skip:
            continue
        attempt = await store.get_latest_attempt(rollout.rollout_id)
        spans = await store.query_spans(rollout.rollout_id, attempt.attempt_id) if attempt is not None else []
        triplets = await anyio.to_thread.run_sync(spans_to_triplets, list(spans), adapter)
        group = (rollout.metadata or {}).get("data_id", rollout.rollout_id)
        sample = sample_from_triplets(rollout.rollout_id, group, triplets)
        if not sample.turns:
            logger.warning("Rollout %s has no triplet with token ids (%d spans)", rollout.rollout_id, len(spans))
        out.append(sample)
    return out
