"""Drive a store server with upstream Agent Lightning v0.3's own LightningStoreClient.

Run it with the Python of a virtualenv that has ``agentlightning==0.3.0`` installed (it imports nothing of ours)::

    /tmp/upstream/bin/python tests/compat/upstream_client_workflow.py http://127.0.0.1:4747

It enqueues, dequeues, adds spans, updates the attempt, adds resources and queries everything back, checking each
answer; it prints one JSON summary line and exits 0 when every check passed (1 otherwise). ``nox`` sessions and
``plugins/server/tests/test_upstream_compat.py`` run it against our server.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, Dict, List


async def workflow(url: str) -> Dict[str, Any]:
    import agentlightning as agl
    from agentlightning.store.client_server import LightningStoreClient
    from agentlightning.types import LLM, EnqueueRolloutRequest, Span

    checks: List[str] = []

    def check(condition: bool, what: str) -> None:
        if not condition:
            raise AssertionError(what)
        checks.append(what)

    client = LightningStoreClient(url, retry_delays=(), health_retry_delays=())
    try:
        resources = await client.add_resources({"llm": LLM(endpoint="http://localhost:1/v1", model="m")})
        check(resources.resources_id.startswith("rs-") or bool(resources.resources_id), "add_resources")
        latest = await client.get_latest_resources()
        check(latest is not None and latest.resources_id == resources.resources_id, "get_latest_resources")

        queued = await client.enqueue_rollout({"question": "1+1"}, mode="train", metadata={"k": 1})
        check(queued.status == "queuing" and queued.metadata == {"k": 1}, "enqueue_rollout")
        many = await client.enqueue_many_rollouts([EnqueueRolloutRequest(input=i) for i in range(3)])
        check([r.input for r in many] == [0, 1, 2], "enqueue_many_rollouts keeps order")

        claimed = await client.dequeue_rollout(worker_id="worker-1")
        check(claimed is not None and claimed.rollout_id == queued.rollout_id, "dequeue_rollout is FIFO")
        assert claimed is not None
        attempt = claimed.attempt
        check(attempt.worker_id == "worker-1" and attempt.status == "preparing", "dequeued attempt")

        seq = await client.get_next_span_sequence_id(claimed.rollout_id, attempt.attempt_id)
        check(isinstance(seq, int) and seq >= 1, "get_next_span_sequence_id")
        span = Span.from_attributes(
            attributes={"answer": 2, "nested.key": "v"},
            rollout_id=claimed.rollout_id,
            attempt_id=attempt.attempt_id,
            sequence_id=seq,
            name="upstream-span",
            start_time=time.time(),
            end_time=time.time(),
        )
        stored = await client.add_span(span)
        check(stored is not None and stored.span_id == span.span_id, "add_span")
        again = await client.add_span(span)
        check(again is None, "duplicate add_span answers null")

        running = await client.get_latest_attempt(claimed.rollout_id)
        check(running is not None and running.status == "running", "a span marks the attempt running")
        done = await client.update_attempt(claimed.rollout_id, "latest", status="succeeded")
        check(done.status == "succeeded" and done.end_time is not None, "update_attempt succeeded")

        finished = await client.wait_for_rollouts(rollout_ids=[claimed.rollout_id], timeout=0.1)
        check([r.rollout_id for r in finished] == [claimed.rollout_id], "wait_for_rollouts")
        rollout = await client.get_rollout_by_id(claimed.rollout_id)
        check(rollout is not None and rollout.status == "succeeded", "rollout follows its attempt")

        page = await client.query_rollouts(status_in=["queuing"])
        check(len(page) == 3 and page.total == 3, "query_rollouts status_in")
        spans = await client.query_spans(claimed.rollout_id, attempt_id="latest")
        check(len(spans) == 1 and spans[0].attributes.get("answer") == 2, "query_spans latest")
        attempts = await client.query_attempts(claimed.rollout_id)
        check(len(attempts) == 1, "query_attempts")

        updated = await client.update_rollout(claimed.rollout_id, metadata={"done": True}, mode=None)
        check(updated.metadata == {"done": True} and updated.mode is None, "update_rollout null vs unset")

        worker = await client.update_worker("worker-1", heartbeat_stats={"cpu": 0.5})
        check(worker.heartbeat_stats == {"cpu": 0.5}, "update_worker")
        workers = await client.query_workers()
        check(any(w.worker_id == "worker-1" for w in workers), "query_workers")
        check(await client.get_worker_by_id("no-such-worker") is None, "get_worker_by_id missing")

        stats = await client.statistics()
        check(stats.get("total_rollouts") == 4, "statistics")
        return {"ok": True, "checks": checks, "agentlightning": agl.__version__}
    finally:
        await client.close()


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:4747"
    try:
        summary = asyncio.run(workflow(url))
    except Exception as exc:  # noqa: BLE001 - any failure is reported as JSON to the test
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
