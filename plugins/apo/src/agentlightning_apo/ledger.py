"""Keeping an APO run in the store, so that it outlives the process and resumes after an interruption.

Resources entries, all ordinary ``NamedResources`` (they read back on every store, over HTTP too):

* ``v0``, ``v1``, ... (``<run>-v0`` for a run not named ``apo``): each candidate, as the initial resources with the
  optimised prompt replaced; the rollouts that scored it name it as their ``resources_id``.
* ``<run>-best``: the best prompt so far, same shape. It is written last when the run ends, so it is also the
  store's latest resources.
* ``<run>-state``: the checkpoint, :class:`~agentlightning_apo.state.APOState` as JSON in the ``template`` of a
  ``PromptTemplate`` named ``apo_state`` (resources hold no free-form data). Never give it to an agent.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Dict, Optional

from agentlightning.store.base import LightningStore
from agentlightning.types.core import QUEUING_STATUSES
from agentlightning.types.resources import NamedResources, PromptTemplate

from .state import APOState

__all__ = ["Ledger", "STATE_RESOURCE_KEY", "check_run_name"]

logger = logging.getLogger(__name__)

STATE_RESOURCE_KEY = "apo_state"


def check_run_name(run_name: str) -> str:
    if not isinstance(run_name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", run_name):
        raise ValueError(f"run_name must be letters, digits, '_', '.' or '-', got {run_name!r}")
    return run_name


class Ledger:
    """Reads and writes one APO run's entries in ``store``."""

    def __init__(self, store: LightningStore, run_name: str) -> None:
        check_run_name(run_name)
        self.store = store
        self.run_name = run_name
        self.state_id = f"{run_name}-state"
        self.best_id = f"{run_name}-best"
        self._prefix = "v" if run_name == "apo" else f"{run_name}-v"

    def version_id(self, number: int) -> str:
        return f"{self._prefix}{number}"

    async def load(self) -> Optional[APOState]:
        """The checkpoint, or None when this run has none yet."""
        update = await self.store.get_resources_by_id(self.state_id)
        if update is None:
            return None
        resource = update.resources.get(STATE_RESOURCE_KEY)
        if not isinstance(resource, PromptTemplate):
            raise ValueError(f"resources {self.state_id!r} in the store is not an APO checkpoint")
        try:
            data = json.loads(resource.template)
        except ValueError as exc:
            raise ValueError(f"resources {self.state_id!r}: the APO checkpoint is not valid JSON ({exc})") from exc
        return APOState.from_dict(data)

    async def save(self, state: APOState) -> None:
        text = json.dumps(state.to_dict(), ensure_ascii=False)
        await self.store.update_resources(self.state_id, {STATE_RESOURCE_KEY: PromptTemplate(template=text)})

    async def publish(self, resources_id: str, resources: NamedResources) -> None:
        await self.store.update_resources(resources_id, resources)

    async def next_free_version(self, counter: int) -> int:
        """``counter``, or past the highest version number already stored (never overwrite a stored candidate)."""
        pattern = re.compile(re.escape(self._prefix) + r"(\d+)")
        for update in await self.store.query_resources(resources_id_contains=self._prefix):
            match = pattern.fullmatch(update.resources_id)
            if match:
                counter = max(counter, int(match.group(1)) + 1)
        return counter

    async def cancel_stale_rollouts(self) -> int:
        """Cancel this run's rollouts still queued by an interrupted process; returns how many."""
        cancelled = 0
        for rollout in await self.store.query_rollouts(status_in=list(QUEUING_STATUSES)):  # type: ignore[arg-type]
            meta: Dict[str, Any] = (rollout.metadata or {}).get("apo") or {}
            if meta.get("run") == self.run_name:
                await self.store.update_rollout(rollout.rollout_id, status="cancelled")
                cancelled += 1
        if cancelled:
            logger.info("APO %s: cancelled %d rollouts left queued by the interrupted run", self.run_name, cancelled)
        return cancelled
