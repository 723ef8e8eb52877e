"""Progress of a run: one live line on a terminal (styled with ``rich`` when it is installed), plain lines elsewhere.

:class:`ProgressReporter` polls the store's public query API for rollout counts (and, optionally, the rewards of
newly succeeded rollouts); an algorithm adds its own fields with :meth:`ProgressReporter.update` (the quickstart's
step, policy version, rewards, entropy...). The Trainer runs one while it trains; hand it your own
(``Trainer(progress=ProgressReporter(...))``) to add fields or change where it writes.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

import anyio
import attrs

__all__ = ["ProgressSnapshot", "ProgressReporter", "ProgressLine"]

logger = logging.getLogger(__name__)

_GROUPS = {
    "queued": ["queuing", "requeuing"],
    "running": ["preparing", "running"],
    "succeeded": ["succeeded"],
    "failed": ["failed", "cancelled"],
}

Fields = Sequence[Tuple[str, str]]


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
        return " | ".join(f"{name} {value}" if name else value for name, value in self.fields())

    def fields(self) -> List[Tuple[str, str]]:
        """``(name, value)`` pairs of the line (an empty name shows the value alone)."""
        reward = "n/a" if self.mean_reward is None else f"{self.mean_reward:.3f}"
        return [
            ("", f"rollouts: {self.queued} queued"),
            ("", f"{self.running} running"),
            ("", f"{self.succeeded} succeeded"),
            ("", f"{self.failed} failed"),
            ("mean reward", reward),
            ("", f"{self.rate:.2f}/s"),
        ]


def _rich_console(stream: TextIO) -> Any:
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(file=stream, force_terminal=True, highlight=False, soft_wrap=False)


class ProgressLine:
    """Draws ``(name, value)`` fields as one line.

    On a terminal the line is redrawn in place (``\\r``), styled by ``rich`` when it is installed (``rich=None``) or
    asked for (``rich=True``); elsewhere each render is one plain line, logged (``log=True``) or written to the stream.
    """

    def __init__(self, stream: Optional[TextIO] = None, *, rich: Optional[bool] = None, log: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log = log
        self._console = _rich_console(self.stream) if self.tty and rich is not False else None
        if rich and self.tty and self._console is None:
            raise ImportError("ProgressLine(rich=True) needs rich: pip install rich")
        self._open = False

    @staticmethod
    def plain(fields: Fields) -> str:
        return " | ".join(f"{name} {value}" if name else value for name, value in fields)

    def render(self, fields: Fields, *, final: bool = False) -> None:
        if not self.tty:
            if self.log:
                logger.info("Progress: %s", self.plain(fields))
            else:
                self.stream.write(self.plain(fields) + "\n")
                self.stream.flush()
            return
        self.stream.write("\r\x1b[2K")
        if self._console is not None:
            from rich.text import Text

            text = Text(no_wrap=True, overflow="ellipsis")
            for i, (name, value) in enumerate(fields):
                if i:
                    text.append(" | ", style="dim")
                if name:
                    text.append(name + " ", style="cyan")
                text.append(value, style="bold")
            self._console.print(text, end="", crop=True)
        else:
            self.stream.write(self.plain(fields))
        self._open = not final
        if final:
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        """Ends a line left open on a terminal."""
        if self.tty and self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


class ProgressReporter:
    """Polls the store's rollout counts (and the rewards of newly succeeded rollouts, unless ``rewards=False``) and
    shows them with the fields an algorithm adds through :meth:`update`.

    On a terminal it redraws one line every ``tty_interval`` seconds; elsewhere it logs a line every
    ``log_interval`` seconds (``log=False``: writes it to ``stream``) and once at the end. ``quiet`` shows nothing.
    The store may be given later with :meth:`bind` (the Trainer binds the run's store).
    """

    def __init__(
        self,
        store: Any = None,
        *,
        stream: Optional[TextIO] = None,
        tty_interval: float = 0.5,
        log_interval: float = 10.0,
        rich: Optional[bool] = None,
        log: bool = True,
        rewards: bool = True,
        quiet: bool = False,
    ) -> None:
        self.store = store
        self.display = ProgressLine(stream, rich=rich, log=log)
        self.stream = self.display.stream
        self.tty = self.display.tty
        self.interval = tty_interval if self.tty else log_interval
        self.rewards = rewards
        self.quiet = quiet
        self.fields: Dict[str, str] = {}
        self.last: Optional[ProgressSnapshot] = None
        self._rewards: Dict[str, Optional[float]] = {}
        self._seen_succeeded = 0
        self._started = time.monotonic()
        self._baseline_finished: Optional[int] = None

    def bind(self, store: Any) -> None:
        """The store to poll (the Trainer's run store)."""
        self.store = store

    def update(self, *, show: bool = False, **fields: Any) -> None:
        """Set extra fields, shown after the store's counts in the order first set (``None`` removes one). With
        ``show`` the line is drawn now, with the last counts (off a terminal: one line per call)."""
        for name, value in fields.items():
            key = name.replace("_", " ")
            if value is None:
                self.fields.pop(key, None)
            else:
                self.fields[key] = value if isinstance(value, str) else str(value)
        if show:
            self.render(self.last or ProgressSnapshot())

    async def snapshot(self) -> ProgressSnapshot:
        if self.store is None:
            raise RuntimeError("ProgressReporter has no store; call bind(store) first")
        counts = {}
        for group, statuses in _GROUPS.items():
            counts[group] = (await self.store.query_rollouts(status_in=statuses, limit=0)).total
        if self.rewards:
            await self._collect_rewards()
        finished = counts["succeeded"] + counts["failed"]
        if self._baseline_finished is None:
            self._baseline_finished = finished  # a resumed run: count only what this run finishes
        elapsed = max(1e-6, time.monotonic() - self._started)
        rewards = [r for r in self._rewards.values() if r is not None]
        self.last = ProgressSnapshot(
            **counts,
            mean_reward=sum(rewards) / len(rewards) if rewards else None,
            rate=(finished - self._baseline_finished) / elapsed,
        )
        return self.last

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

    def line_fields(self, snapshot: ProgressSnapshot) -> List[Tuple[str, str]]:
        fields = snapshot.fields()
        if not self.rewards:
            fields = [f for f in fields if f[0] != "mean reward"]
        return fields + list(self.fields.items())

    def render(self, snapshot: ProgressSnapshot, *, final: bool = False) -> None:
        if not self.quiet:
            self.display.render(self.line_fields(snapshot), final=final)

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
                else:
                    self.display.close()
