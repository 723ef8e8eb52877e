"""The deprecated v0.1 HTTP API over the store: upstream's legacy example flow, and the pieces it is made of."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator

import anyio
import pytest

pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

from agentlightning.testing.openai_server import OpenAITestServer  # noqa: E402
from agentlightning.types import PromptTemplate, RolloutLegacy, Task  # noqa: E402
from agentlightning.utils.server_launcher import free_port  # noqa: E402

HERE = Path(__file__).parent


def legacy(cls: Any, *args: Any, **kwargs: Any) -> Any:
    with pytest.warns(DeprecationWarning, match="deprecated"):
        return cls(*args, **kwargs)


@pytest.fixture(scope="module")
def llm() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server


@pytest.mark.slow
def test_upstream_legacy_example_flow(llm: OpenAITestServer) -> None:
    """legacy_apo_server's loop (one prompt per round: publish it, queue a task, wait for its rollout) served to
    legacy_apo_client's two workers of two tasks each, in another process."""
    from agentlightning.server import AgentLightningServer

    prompts = ["You are a helpful assistant.", "You are a knowledgeable AI.", "Be brief.", "You are an expert."]

    async def algorithm() -> None:
        server = legacy(AgentLightningServer, host="127.0.0.1", port=free_port())
        await server.start()
        env = {**os.environ, "OPENAI_API_BASE": llm.base_url}
        client = subprocess.Popen(  # noqa: ASYNC220 - started once; the server runs in its own thread
            [sys.executable, str(HERE / "legacy_client_script.py"), server.endpoint],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            rewards = []
            for prompt in prompts:
                resources_id = await server.update_resources(
                    {"system_prompt": PromptTemplate(template=prompt, engine="f-string")}
                )
                task_id = await server.queue_task(sample={"prompt": "What is the capital of France?"}, mode="train")
                rollout = await server.poll_completed_rollout(task_id, timeout=60)
                assert rollout is not None, "no rollout within 60 s"
                assert rollout.rollout_id == task_id
                rewards.append(rollout.final_reward)
                stored = await server.store.get_rollout_by_id(task_id)
                assert stored is not None and stored.status == "succeeded" and stored.resources_id == resources_id
            assert rewards == [float(len(p)) for p in prompts]  # each worker read the prompt then current
            _, err = client.communicate(timeout=60)  # 2 workers x max_tasks=2: done after 4 tasks
            assert client.returncode == 0, err[-3000:]
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate(timeout=30)
            await server.stop()

    anyio.run(algorithm)


def test_client_and_server_in_process_with_timeout_requeue() -> None:
    from agentlightning.client import AgentLightningClient
    from agentlightning.server import AgentLightningServer

    async def flow() -> None:
        server = legacy(AgentLightningServer, port=0, task_timeout_seconds=0.5)
        await server.start()
        try:
            client = legacy(AgentLightningClient, server.endpoint, poll_interval=0.05)
            assert await client.get_latest_resources_async() is None  # 404: nothing published yet
            rid = await server.update_resources({"p": PromptTemplate(template="hi", engine="f-string")})
            latest = client.get_latest_resources()
            assert latest is not None and latest.resources_id == rid
            assert (await client.get_resources_by_id_async(rid)).resources["p"].template == "hi"  # type: ignore[union-attr]
            assert client.get_resources_by_id("missing") is None
            task_id = await server.queue_task({"q": 1}, mode="val", resources_id=rid, metadata={"k": 1})
            first = await client.poll_next_task_async()
            assert isinstance(first, Task) and first.rollout_id == task_id and first.num_claims == 1
            assert (first.input, first.mode, first.resources_id, first.metadata) == ({"q": 1}, "val", rid, {"k": 1})
            second = await client.poll_next_task_async()  # handed out again once the first claim timed out
            assert second is not None and second.rollout_id == task_id and second.num_claims == 2
            answer = await client.post_rollout_async(RolloutLegacy(rollout_id=task_id, final_reward=0.5))
            assert answer == {"status": "ok", "message": f"Rollout {task_id} received and stored.", "data": None}
            done = await server.get_completed_rollout(task_id)
            assert done is not None and done.final_reward == 0.5
            assert await server.get_completed_rollout(task_id) is None  # popped
            assert await server.retrieve_completed_rollouts() == []
        finally:
            await server.stop()

    anyio.run(flow)


def test_client_errors_come_back_as_none() -> None:
    from agentlightning.client import AgentLightningClient

    client = legacy(AgentLightningClient, f"http://127.0.0.1:{free_port()}", timeout=2)
    assert client.get_latest_resources() is None
    assert anyio.run(client.get_latest_resources_async) is None
    assert client.post_rollout(RolloutLegacy(rollout_id="r")) is None


def test_dev_task_loader_and_legacy_runner_with_the_v0_1_signature() -> None:
    from agentlightning.adapter import TracerTraceToTriplet
    from agentlightning.client import DevTaskLoader
    from agentlightning.litagent import LitAgent
    from agentlightning.runner.legacy import LegacyAgentRunner
    from agentlightning.tracer.dummy import DummyTracer

    with pytest.raises(ValueError, match="at least one task"):
        legacy(DevTaskLoader, [], {})
    with pytest.raises(ValueError, match="either Task or TaskInput"):
        legacy(DevTaskLoader, [Task(rollout_id="a", input=1), 2], {})
    loader = legacy(DevTaskLoader, [{"x": 1}, {"x": 2}], {"p": PromptTemplate(template="t", engine="f-string")})
    assert repr(loader).startswith("DevTaskLoader(num_tasks=2")
    with pytest.raises(ValueError, match="Only 'local' is available"):
        loader.get_resources_by_id("other")

    seen = []

    class V01Agent(LitAgent[Any]):
        def validation_rollout(self, task, rollout_id, resources):  # type: ignore[no-untyped-def, override]
            seen.append((task["x"], rollout_id, resources["p"].template))
            return float(task["x"])

    runner = legacy(LegacyAgentRunner, V01Agent(), loader, DummyTracer(), TracerTraceToTriplet(), max_tasks=3)
    assert runner.iter() == 3
    assert seen == [(1, "local_task_001", "t"), (2, "local_task_002", "t"), (1, "local_task_001", "t")]
    assert [(r.rollout_id, r.final_reward) for r in loader.rollouts] == [
        ("local_task_001", 1.0), ("local_task_002", 2.0), ("local_task_001", 1.0),
    ]  # fmt: skip


def test_fit_v0_runs_one_worker_in_process_on_a_dev_task_loader() -> None:
    from agentlightning.client import DevTaskLoader
    from agentlightning.litagent import LitAgent
    from agentlightning.trainer import Trainer

    class Agent(LitAgent[Any]):
        async def training_rollout_async(self, task, rollout_id, resources):  # type: ignore[no-untyped-def, override]
            return float(task)

    loader = legacy(DevTaskLoader, [Task(rollout_id="t1", input=3, mode="train")], {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        Trainer(n_runners=1, max_rollouts=2, tracer="dummy", progress=False).fit_v0(Agent(), loader)
    assert [r.final_reward for r in loader.rollouts] == [3.0, 3.0]
    with pytest.raises(ValueError, match="server URL or an AgentLightningClient"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            Trainer(progress=False).fit_v0(Agent(), [1, 2])
