"""A runner process for test_restart.py: claims rollouts through HTTP and records every acknowledged write.

``python restart_runner.py URL NAME ITERATIONS OUT_FILE``: one JSON line per finished rollout in OUT_FILE, written
only after the server acknowledged the spans and the final status.
"""

from __future__ import annotations

import json
import sys

import anyio


async def main(url: str, name: str, iterations: int, out_path: str) -> None:
    from agentlightning.testing.store_suite import make_span
    from agentlightning_server import LightningStoreClient

    client = LightningStoreClient(url, retry_delays=(0.1, 0.2, 0.3, 0.5, 1.0, 1.0, 2.0, 2.0, 4.0))
    with open(out_path, "a", buffering=1) as out:
        for i in range(iterations):
            await client.enqueue_rollout({"runner": name, "i": i})
            claimed = await client.dequeue_rollout(worker_id=name)
            if claimed is None:
                continue
            rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
            seqs = await client.get_many_span_sequence_ids([(rid, aid)] * 3)
            spans = [make_span(rid, aid, seq, name=f"{name}-{i}") for seq in seqs]
            await client.add_many_spans(spans)
            await client.update_attempt(rid, aid, status="succeeded")
            out.write(json.dumps({"rollout_id": rid, "span_ids": [s.span_id for s in spans]}) + "\n")
            await anyio.sleep(0.02)  # paced like a runner doing work, so the test can kill the server mid-run
    await client.close()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
