"""Wire compatibility with upstream Agent Lightning v0.3.0, both ways.

Skipped unless ``AGL_UPSTREAM_VENV`` names a virtualenv with ``agentlightning==0.3.0`` installed, e.g.::

    uv venv /tmp/upstream && uv pip install --python /tmp/upstream/bin/python agentlightning==0.3.0
    AGL_UPSTREAM_VENV=/tmp/upstream pytest plugins/server/tests/test_upstream_compat.py -m slow
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Iterator

import anyio
import httpx
import pytest
from agentlightning_server import LightningStoreClient, LightningStoreServer
from agentlightning_server.serve import free_port

pytestmark = pytest.mark.slow

COMPAT = Path(__file__).resolve().parents[3] / "tests" / "compat"
VENV = os.environ.get("AGL_UPSTREAM_VENV")


@pytest.fixture(scope="module")
def upstream_python() -> str:
    if not VENV:
        pytest.skip("AGL_UPSTREAM_VENV is not set (a venv with agentlightning==0.3.0)")
    python = Path(VENV) / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no python in AGL_UPSTREAM_VENV={VENV}")
    return str(python)


def _env() -> dict:
    # litellm (imported by upstream) tries to download a price list at import: keep it local
    return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": ""}


def test_upstream_client_against_our_server(upstream_python: str) -> None:
    from agentlightning_memory import InMemoryLightningStore

    with LightningStoreServer(lambda: InMemoryLightningStore(watchdog_interval=None), port=0) as server:
        done = subprocess.run(
            [upstream_python, str(COMPAT / "upstream_client_workflow.py"), server.endpoint],
            capture_output=True, text=True, timeout=180, env=_env(), check=False,
        )  # fmt: skip
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0 and summary["ok"], (summary, done.stderr[-2000:])
    assert summary["agentlightning"] == "0.3.0"


@pytest.fixture(scope="module")
def upstream_server(upstream_python: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [upstream_python, str(COMPAT / "upstream_server.py"), str(port)],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "upstream server exited"
            try:
                if httpx.get(endpoint + "/v1/agl/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "upstream server did not start"
            time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_our_client_against_upstream_server(upstream_server: str) -> None:
    from agentlightning.testing.store_suite import make_span
    from agentlightning.types.resources import LLM

    async def workflow() -> None:
        client = LightningStoreClient(upstream_server, retry_delays=())
        try:
            resources = await client.add_resources({"llm": LLM(endpoint="http://x/v1", model="m")})
            assert (await client.get_latest_resources()).resources_id == resources.resources_id  # type: ignore[union-attr]
            queued = await client.enqueue_rollout({"q": 1}, metadata={"k": 1})
            many = await client.enqueue_many_rollouts([])
            assert many == []
            claimed = await client.dequeue_rollout(worker_id="w")
            assert claimed is not None and claimed.rollout_id == queued.rollout_id
            rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
            seq = await client.get_next_span_sequence_id(rid, aid)
            stored = await client.add_span(make_span(rid, aid, seq, name="ours"))
            assert stored is not None and stored.name == "ours"
            # upstream's server has no batch route: the client falls back to one POST per span
            batch = [make_span(rid, aid, seq + 1, name="b1"), make_span(rid, aid, seq + 2, name="b2")]
            assert [s.name for s in await client.add_many_spans(batch)] == ["b1", "b2"]
            done = await client.update_attempt(rid, "latest", status="succeeded")
            assert done.status == "succeeded"
            assert [r.rollout_id for r in await client.wait_for_rollouts(rollout_ids=[rid], timeout=0)] == [rid]
            page = await client.query_rollouts(status_in=["succeeded"])
            assert page.total == 1 and page[0].rollout_id == rid
            spans = await client.query_spans(rid, attempt_id="latest")
            assert [s.name for s in spans] == ["ours", "b1", "b2"]
            worker = await client.update_worker("w", heartbeat_stats={"cpu": 1})
            assert worker.heartbeat_stats == {"cpu": 1}
            assert (await client.statistics())["total_rollouts"] == 1
            # not checked: upstream's server answers 500 to GET /rollouts/<missing id> (its response model refuses
            # null); upstream's client hides that as None, ours raises the StoreError
        finally:
            await client.close()

    anyio.run(workflow)
