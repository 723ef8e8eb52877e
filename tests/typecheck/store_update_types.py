"""Checked by mypy, never run (``nox -s typecheck``): the store's update methods accept only real values.

mypy runs with ``--warn-unused-ignores``, so every ``# type: ignore[arg-type]`` below must be needed: a bogus status
that type-checked would leave its ignore unused and fail the check.
"""

from __future__ import annotations

from typing import Optional

from agentlightning.store import UNSET, LightningStore, Unset, is_unset
from agentlightning.types.core import AttemptStatus, RolloutStatus


async def bogus_values_are_rejected(store: LightningStore) -> None:
    await store.update_rollout("ro-1", status="bogus")  # type: ignore[arg-type]
    await store.update_rollout("ro-1", mode="training")  # type: ignore[arg-type]
    await store.update_attempt("ro-1", "latest", status="bogus")  # type: ignore[arg-type]
    await store.update_attempt("ro-1", "latest", status="queuing")  # type: ignore[arg-type]  # a rollout status
    await store.update_worker("w-1", heartbeat_stats=None)  # type: ignore[arg-type]
    status: str = "succeeded"
    await store.update_rollout("ro-1", status=status)  # type: ignore[arg-type]  # a plain str is not a status


async def real_values_are_accepted(store: LightningStore) -> None:
    await store.update_rollout("ro-1", status="succeeded", mode=None, metadata={"k": 1})
    await store.update_rollout("ro-1", status=UNSET, resources_id=None)
    await store.update_attempt("ro-1", "latest", status="timeout", worker_id=None, last_heartbeat_time=1.0)
    await store.update_worker("w-1", heartbeat_stats={"gpu": 0.5})


def unset_narrows(status: RolloutStatus | Unset, attempt: Optional[AttemptStatus] | Unset) -> RolloutStatus:
    if attempt is not UNSET and attempt is not None:
        _: AttemptStatus = attempt
    if status is UNSET:
        return "queuing"
    assert not is_unset(status)
    return status
