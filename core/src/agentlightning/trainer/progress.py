"""Progress of a run: a live line on a terminal, periodic log lines elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Dict, Optional, TextIO

import anyio
import attrs

__all__ = ["ProgressSnapshot", "ProgressReporter"]

logger = logging.getLogger(__name__)

_GROUPS = {
    "queued": ["queuing", "requeuing"],
    "running": ["preparing", "running"],
    "succeeded": ["succeeded"],
    "failed": ["failed", "cancelled"],
}


@attrs.define
class ProgressSnapshot:
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    mean_reward: Optional[float] = None
    rate: float = 0.0
    """Finished rollouts per second since the reporter started."""

    def line(self) -> str:
        reward = "n/a" if self.mean_reward is None else f"{self.mean_reward:.3f}"
        return (
            f"rollouts: {self.queued} queued | {self.running} running | {self.succeeded} succeeded | "
            f"{self.failed} failed | mean reward {reward} | {self.rate:.2f}/s"
        )


class ProgressReporter:
    """Polls the store's rollout counts and the rewards of newly succeeded rollouts.

    On a terminal it redraws one line (carriage return) every ``tty_interval`` seconds; elsewhere it logs a line
    every ``log_interval`` seconds (and once at the end).
    """

    def __init__(
        self,
        store: Any,
        *,
        stream: Optional[TextIO] = None,
        tty_interval: float = 0.5,
        log_interval: float = 10.0,
    ) -> None:
        self.store = store
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = tty_interval if self.tty else log_interval
        self._rewards: Dict[str, Optional[float]] = {}
        self._seen_succeeded = 0
        self._started = time.monotonic()
        self._baseline_finished: Optional[int] = None

    async def snapshot(self) -> ProgressSnapshot:
        counts = {}
        for group, statuses in _GROUPS.items():
            counts[group] = (await self.store.query_rollouts(status_in=statuses, limit=0)).total
        await self._collect_rewards()
        finished = counts["succeeded"] + counts["failed"]
        if self._baseline_finished is None:
            self._baseline_finished = finished  # a resumed run: count only what this run finishes
        elapsed = max(1e-6, time.monotonic() - self._started)
        rewards = [r for r in self._rewards.values() if r is not None]
        return ProgressSnapshot(
            **counts,
            mean_reward=sum(rewards) / len(rewards) if rewards else None,
            rate=(finished - self._baseline_finished) / elapsed,
        )

    async def _collect_rewards(self, max_new: int = 200) -> None:
        from agentlightning.emitter.reward import find_final_reward

        page = await self.store.query_rollouts(
            status_in=["succeeded"], sort_by="end_time", offset=self._seen_succeeded, limit=max_new
        )
        for rollout in page:
            if rollout.rollout_id in self._rewards:
                continue
            try:
                spans = await self.store.query_spans(rollout.rollout_id, "latest")
                self._rewards[rollout.rollout_id] = find_final_reward(list(spans))
            except Exception:  # noqa: BLE001 - evicted spans, or a reward span we cannot read: no reward to show
                self._rewards[rollout.rollout_id] = None
        self._seen_succeeded += len(page)

    def render(self, snapshot: ProgressSnapshot, *, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + snapshot.line() + ("\n" if final else ""))
            self.stream.flush()
        else:
            logger.info("Progress: %s", snapshot.line())

    async def run(self) -> None:
        """Report until cancelled; the last state is reported on the way out."""
        last: Optional[ProgressSnapshot] = None
        try:
            while True:
                try:
                    last = await self.snapshot()
                    self.render(last)
                except Exception:  # the progress line must never stop training
                    logger.debug("progress snapshot failed", exc_info=True)
                await anyio.sleep(self.interval)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    with anyio.fail_after(5):
                        last = await self.snapshot()
                except Exception:  # no final snapshot: the last one is shown
                    logger.debug("final progress snapshot failed", exc_info=True)
                if last is not None:
                    self.render(last, final=True)
