"""End to end: a Trainer with runner processes, the proxy in its own process, an agent that only reads its base URL."""

from __future__ import annotations

import anyio
import pytest
from agentlightning.adapter import LlmProxyTraceToTriplet
from agentlightning.testing.openai_server import OpenAITestServer
from agentlightning.trainer import Trainer
from agentlightning_litellm import LLMProxy
from llmproxy_agent import ProxyAlgorithm, proxy_agent
from llmproxy_helpers import expected_chat_ids, model_list, proxy_spans

pytestmark = pytest.mark.slow


def test_trainer_with_runner_processes_records_every_call_through_the_proxy(backend: OpenAITestServer) -> None:
    algorithm = ProxyAlgorithm()
    proxy = LLMProxy(model_list=model_list(backend))  # launch_mode="process"; the Trainer gives it the store
    trainer = Trainer(
        algorithm=algorithm,
        llm_proxy=proxy,
        n_runners=2,
        strategy="multiprocess",
        runner={"type": "agentlightning.runner.LitAgentRunner", "poll_interval": 0.05},
        progress=False,
    )
    tasks = [f"task {i}" for i in range(4)]
    trainer.fit(proxy_agent, tasks)
    assert not proxy.is_running()  # started and stopped around the algorithm's run
    assert algorithm.resource is not None and algorithm.resource["type"] == "ProxyLLM"
    assert [r.status for r in algorithm.finished] == ["succeeded"] * 4

    async def check() -> None:
        store = trainer.store
        for rollout in algorithm.finished:
            attempt = await store.get_latest_attempt(rollout.rollout_id)
            spans = await proxy_spans(store, rollout.rollout_id, attempt.attempt_id, 2)
            calls = sorted((s for s in spans if s.name == "litellm_request"), key=lambda s: s.sequence_id)
            texts = [c.attributes["gen_ai.prompt.0.content"] for c in calls]
            assert texts == [rollout.input, rollout.input + " again"]
            assert len({c.sequence_id for c in calls}) == 2
            for call, text in zip(calls, texts):
                prompt_ids, response_ids = expected_chat_ids([{"role": "user", "content": text}])
                assert call.attributes["prompt_token_ids"] == prompt_ids
                assert call.attributes["response_token_ids"] == response_ids
            triplets = LlmProxyTraceToTriplet().adapt(spans)
            assert len(triplets) == 2 and all(t.prompt["token_ids"] for t in triplets)

    anyio.run(check)
