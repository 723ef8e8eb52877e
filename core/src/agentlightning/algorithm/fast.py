"""``FastAlgorithm`` (what ``Trainer.dev`` accepts) and ``Baseline``: run every sample once and report rewards."""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple

import anyio
import attrs

from agentlightning.types.core import (
    QUEUING_STATUSES,
    RUNNING_STATUSES,
    Dataset,
    EnqueueRolloutRequest,
    Rollout,
    RolloutConfig,
)

from .base import Algorithm
from .utils import with_llm_proxy, with_store

__all__ = ["FastAlgorithm", "Baseline", "RolloutOutcome", "summarize", "DATA_INDEX_KEY"]

logger = logging.getLogger(__name__)

DATA_INDEX_KEY = "agl_data_index"
"""Rollout metadata keys with which Baseline finds, on resume, the rollouts of each sample."""
DATA_SPLIT_KEY = "agl_data_split"
EPOCH_KEY = "agl_epoch"

DEFAULT_ROLLOUT_CONFIG = RolloutConfig(unresponsive_seconds=120.0, max_attempts=3, retry_condition=["unresponsive"])
"""A runner that stops heartbeating for 2 minutes (a crashed process) costs one attempt; retried up to 3 times."""

SpanVerbosity = Literal["keys", "key_values", "none"]


class FastAlgorithm(Algorithm):
    """An algorithm quick enough for ``Trainer.dev`` (no training, just rollouts)."""


@attrs.define(kw_only=True)
class RolloutOutcome:
    """How one sample's rollout ended."""

    rollout_id: str
    split: str
    index: int
    epoch: int
    status: str
    reward: Optional[float]
    seconds: Optional[float]


def summarize(outcomes: Sequence[RolloutOutcome]) -> Dict[str, Any]:
    """Count, success rate and reward statistics (mean, std, min, max over rollouts that have a reward)."""
    rewards = [o.reward for o in outcomes if o.reward is not None]
    succeeded = sum(1 for o in outcomes if o.status == "succeeded")
    return {
        "count": len(outcomes),
        "succeeded": succeeded,
        "failed": sum(1 for o in outcomes if o.status != "succeeded"),
        "success_rate": succeeded / len(outcomes) if outcomes else None,
        "with_reward": len(rewards),
        "mean": statistics.fmean(rewards) if rewards else None,
        "std": statistics.pstdev(rewards) if len(rewards) > 1 else (0.0 if rewards else None),
        "min": min(rewards) if rewards else None,
        "max": max(rewards) if rewards else None,
    }


class Baseline(FastAlgorithm):
    """Enqueue every sample (train split, then validation split) for ``n_epochs``, wait, and log each outcome.

    Rollouts carry their sample in metadata (``agl_data_split``, ``agl_data_index``, ``agl_epoch``), so a run on a
    store that already holds some resumes: samples whose rollout finished are kept, queued ones are waited for,
    interrupted ones (left preparing/running by a previous run) get their attempt marked ``unresponsive`` and are
    requeued, missing ones are enqueued.

    Args:
        n_epochs: passes over the data.
        train_split: accepted for upstream compatibility (unused there too); must be in (0, 1).
        polling_interval: seconds between checks of the queue and of finished rollouts.
        max_queue_length: at most this many of the rollouts are queued (not yet claimed) at once.
        span_verbosity: log each span's attribute ``"keys"``, ``"key_values"``, or nothing (``"none"``).
        rollout_config: retry/timeout config of each rollout (default: retried when its runner dies).
    """

    def __init__(
        self,
        *,
        n_epochs: int = 1,
        train_split: float = 0.5,
        polling_interval: float = 1.0,
        max_queue_length: int = 16,
        span_verbosity: SpanVerbosity = "keys",
        rollout_config: Optional[RolloutConfig] = DEFAULT_ROLLOUT_CONFIG,
    ) -> None:
        if not 0 < train_split < 1:
            raise ValueError("train_split must be between 0 and 1.")
        if n_epochs < 1:
            raise ValueError(f"n_epochs must be >= 1, got {n_epochs}")
        if max_queue_length < 1:
            raise ValueError(f"max_queue_length must be >= 1, got {max_queue_length}")
        if span_verbosity not in ("keys", "key_values", "none"):
            raise ValueError(f"span_verbosity must be 'keys', 'key_values' or 'none', got {span_verbosity!r}")
        self.n_epochs = n_epochs
        self.train_split = train_split
        self.polling_interval = polling_interval
        self.max_queue_length = max_queue_length
        self.span_verbosity = span_verbosity
        self.rollout_config = rollout_config
        self.outcomes: List[RolloutOutcome] = []

    def summary(self, split: Optional[str] = None) -> Dict[str, Any]:
        """Statistics of the last run's outcomes (of one split when given)."""
        return summarize([o for o in self.outcomes if split is None or o.split == split])

    @with_llm_proxy()
    @with_store
    async def run(
        self,
        store: Any,
        llm_proxy: Any,
        train_dataset: Optional[Dataset[Any]] = None,
        val_dataset: Optional[Dataset[Any]] = None,
    ) -> None:
        samples = self._samples(train_dataset, val_dataset)
        if not samples:
            logger.error("Baseline requires at least one non-empty dataset (train_dataset or val_dataset).")
            return
        self.outcomes = []
        resources_id = await self._publish_resources(store)
        started = time.time()
        for epoch in range(self.n_epochs):
            await self._run_epoch(store, epoch, samples, resources_id, started)
        for split in ("train", "val"):
            picked = [o for o in self.outcomes if o.split == split]
            if picked:
                s = summarize(picked)
                logger.info(
                    "Baseline %s: %d rollouts, %d succeeded (%.0f%%), reward mean %s min %s max %s",
                    split, s["count"], s["succeeded"], 100 * (s["success_rate"] or 0), _fmt(s["mean"]),
                    _fmt(s["min"]), _fmt(s["max"]),
                )  # fmt: skip

    # -- pieces -----------------------------------------------------------------------------------------------

    @staticmethod
    def _samples(train: Optional[Dataset[Any]], val: Optional[Dataset[Any]]) -> List[Tuple[str, int, Any]]:
        out: List[Tuple[str, int, Any]] = []
        for split, data in (("train", train), ("val", val)):
            if data is not None:
                out.extend((split, i, data[i]) for i in range(len(data)))
        return out

    async def _publish_resources(self, store: Any) -> Optional[str]:
        initial = self.get_initial_resources()
        if initial is None:
            logger.warning("No initial resources; runners use the latest resources in the store.")
            return None
        return (await store.update_resources("default", initial)).resources_id

    async def _existing(self, store: Any, epoch: int, started: float) -> Dict[Tuple[str, int], Rollout]:
        """This epoch's rollouts from earlier runs, by sample; interrupted ones are put back in the queue."""
        found: Dict[Tuple[str, int], Rollout] = {}
        for rollout in await store.query_rollouts():
            meta = rollout.metadata or {}
            if meta.get(EPOCH_KEY) != epoch or DATA_INDEX_KEY not in meta:
                continue
            key = (str(meta.get(DATA_SPLIT_KEY)), int(meta[DATA_INDEX_KEY]))
            previous = found.get(key)
            if previous is not None and (previous.status == "succeeded" or previous.start_time > rollout.start_time):
                continue
            found[key] = rollout
        for key, rollout in found.items():
            attempt = getattr(rollout, "attempt", None)
            if rollout.status in RUNNING_STATUSES and attempt is not None and attempt.start_time < started:
                from agentlightning.trainer.recovery import recover_rollout

                logger.info("[Rollout %s] Interrupted by an earlier run; requeuing it.", rollout.rollout_id)
                found[key] = await recover_rollout(store, rollout)
        return found

    async def _run_epoch(
        self, store: Any, epoch: int, samples: List[Tuple[str, int, Any]], resources_id: Optional[str], started: float
    ) -> None:
        existing = await self._existing(store, epoch, started)
        pending: Dict[str, Tuple[str, int]] = {}
        to_enqueue: List[Tuple[str, int, Any]] = []
        for split, index, item in samples:
            rollout = existing.get((split, index))
            if rollout is None:
                to_enqueue.append((split, index, item))
            elif rollout.status in ("succeeded", "failed", "cancelled"):
                await self._finish(store, rollout, split, index, epoch)
            else:
                pending[rollout.rollout_id] = (split, index)
        if existing:
            logger.info(
                "Baseline epoch %d: resuming with %d finished, %d in progress, %d to enqueue",
                epoch, len(samples) - len(to_enqueue) - len(pending), len(pending), len(to_enqueue),
            )  # fmt: skip
        cursor = 0
        while cursor < len(to_enqueue) or pending:
            if cursor < len(to_enqueue):
                queued = (await store.query_rollouts(status_in=sorted(QUEUING_STATUSES), limit=0)).total
                room = self.max_queue_length - queued
                if room > 0:
                    batch = to_enqueue[cursor : cursor + room]
                    cursor += len(batch)
                    requests = [self._request(split, index, item, epoch, resources_id) for split, index, item in batch]
                    for rollout, (split, index, _) in zip(
                        await store.enqueue_many_rollouts(requests), batch, strict=True
                    ):
                        pending[rollout.rollout_id] = (split, index)
            if not pending:
                await anyio.sleep(self.polling_interval)  # the queue is full of other rollouts
                continue
            finished = await store.wait_for_rollouts(rollout_ids=list(pending), timeout=self.polling_interval)
            for rollout in finished:
                split, index = pending.pop(rollout.rollout_id)
                await self._finish(store, rollout, split, index, epoch)

    def _request(
        self, split: str, index: int, item: Any, epoch: int, resources_id: Optional[str]
    ) -> EnqueueRolloutRequest:
        return EnqueueRolloutRequest(
            input=item,
            mode="train" if split == "train" else "val",
            resources_id=resources_id,
            config=self.rollout_config,
            metadata={DATA_SPLIT_KEY: split, DATA_INDEX_KEY: index, EPOCH_KEY: epoch},
        )

    async def _finish(self, store: Any, rollout: Rollout, split: str, index: int, epoch: int) -> None:
        from agentlightning.emitter.reward import find_final_reward

        rid = rollout.rollout_id
        seconds = (rollout.end_time - rollout.start_time) if rollout.end_time is not None else None
        logger.info("[Rollout %s] Finished with status %s in %s seconds.", rid, rollout.status, _fmt(seconds))
        spans: List[Any] = []
        for attempt in await store.query_attempts(rid):
            logger.info(
                "[Rollout %s | Attempt %s] ID: %s. Status: %s. Worker: %s",
                rid, attempt.sequence_id, attempt.attempt_id, attempt.status, attempt.worker_id,
            )  # fmt: skip
        try:
            spans = list(await store.query_spans(rid, "latest"))
        except Exception:  # evicted spans, or a store that refuses "latest"
            logger.warning("[Rollout %s] Could not read its spans", rid, exc_info=True)
        self._log_spans(rid, spans)
        reward = find_final_reward(spans)
        self.outcomes.append(
            RolloutOutcome(
                rollout_id=rid, split=split, index=index, epoch=epoch, status=rollout.status, reward=reward,
                seconds=seconds,
            )
        )  # fmt: skip
        self._log_adapted(rid, spans)

    def _log_spans(self, rid: str, spans: Sequence[Any]) -> None:
        # upstream v0.3's line: "[Rollout r | Attempt a | Span s] #n (name) From <iso>, to <iso>, 1.25 seconds. ..."
        if self.span_verbosity == "none":
            return
        for span in spans:
            elapsed = (span.end_time - span.start_time) if span.start_time and span.end_time else None
            head = (
                f"[Rollout {rid} | Attempt {span.attempt_id} | Span {span.span_id}] #{span.sequence_id} ({span.name})"
            )
            detail = (
                f"Attributes: {span.attributes}"
                if self.span_verbosity == "key_values"
                else f"Attribute keys: {list(span.attributes)}"
            )
            logger.info(
                "%s From %s, to %s, %s seconds. %s",
                head, _iso(span.start_time), _iso(span.end_time),
                "unknown" if elapsed is None else f"{elapsed:.2f}", detail,
            )  # fmt: skip

    def _log_adapted(self, rid: str, spans: Sequence[Any]) -> None:
        try:
            adapter = self.get_adapter()
        except ValueError:
            return
        try:
            logger.info("[Rollout %s] Adapted data: %s", rid, adapter.adapt(list(spans)))
        except Exception:
            logger.warning("[Rollout %s] The adapter could not adapt its spans", rid, exc_info=True)


def _iso(timestamp: Optional[float]) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(timestamp).isoformat() if timestamp else "unknown"


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"
