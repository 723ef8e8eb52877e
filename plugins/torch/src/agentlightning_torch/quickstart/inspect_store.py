"""``agl quickstart --inspect RUN_DIR``: what a run left in its store, through the public store API."""

from __future__ import annotations

import os
from typing import List

__all__ = ["inspect_run"]


async def _inspect(url: str) -> List[str]:
    from agentlightning.adapter import LlmProxyTraceToTriplet
    from agentlightning.store import open_store

    lines: List[str] = [f"store: {url}"]
    async with open_store(url) as store:
        groups = {
            "queued": ["queuing", "requeuing"],
            "running": ["preparing", "running"],
            "succeeded": ["succeeded"],
            "failed": ["failed", "cancelled"],
        }
        for name, statuses in groups.items():
            total = (await store.query_rollouts(status_in=statuses, limit=0)).total  # type: ignore[arg-type]
            lines.append(f"  rollouts {name:<10} {total}")
        resources = await store.query_resources(limit=0)
        latest = await store.get_latest_resources()
        lines.append(f"  resource versions {resources.total} (latest {latest.resources_id if latest else None})")
        last = await store.query_rollouts(status_in=["succeeded"], sort_by="end_time", sort_order="desc", limit=1)
        for rollout in last:
            spans = list(await store.query_spans(rollout.rollout_id, "latest"))
            lines.append(f"  last rollout {rollout.rollout_id} ({rollout.mode}) input={rollout.input}")
            for span in spans:
                lines.append(f"    span #{span.sequence_id} {span.name}")
            for triplet in LlmProxyTraceToTriplet().adapt(spans):
                lines.append(
                    f"    triplet prompt={triplet.prompt['token_ids']} response={triplet.response['token_ids']}"
                    f" reward={triplet.reward}"
                )
    return lines


def inspect_run(run_dir: str) -> int:
    import anyio

    path = os.path.join(os.path.abspath(run_dir), "store.db")
    if not os.path.exists(path):
        print(f"agl quickstart --inspect: no store at {path}")
        return 2
    for line in anyio.run(_inspect, "sqlite:///" + path):
        print(line)
    return 0
