"""The policy server through the real ``openai`` client: plain and streaming answers, token ids, ``n`` > 1, errors,
and the spans it records under a rollout path, read back by core's proxy triplet adapter."""

from __future__ import annotations

import os
from typing import Any, Iterator

import anyio
import openai
import pytest
from agentlightning.adapter import LlmProxyTraceToTriplet
from agentlightning.emitter.reward import emit_reward
from agentlightning.store import open_store
from agentlightning.types.tracer import Span
from agentlightning_torch.policy import build_policy
from agentlightning_torch.server import LLM_SPAN_NAME, POLICY_VERSION_ATTRIBUTE, PolicyServer

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def policy() -> Any:
    return build_policy(alphabet="abcdAB", d_model=16, n_layers=1, n_heads=2, max_len=32, seed=3)


@pytest.fixture(scope="module")
def server(policy: Any) -> Iterator[PolicyServer]:
    with PolicyServer(policy) as srv:
        yield srv


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30)


def test_chat_completion_with_token_ids_and_n(server: PolicyServer, policy: Any) -> None:
    client = _client(server.endpoint)
    messages = [{"role": "user", "content": "abc"}]
    resp = client.chat.completions.create(
        model="anything", messages=messages, max_tokens=5, n=4, extra_body={"return_token_ids": True}
    )
    assert resp.object == "chat.completion" and len(resp.choices) == 4
    extra = resp.model_extra or {}
    assert extra["prompt_token_ids"] == policy.encode_chat(messages)
    for i, choice in enumerate(resp.choices):
        ids = (choice.model_extra or {})["token_ids"]
        assert choice.index == i and 1 <= len(ids) <= 5
        assert choice.message.content == policy.decode(ids)
        assert choice.finish_reason == ("stop" if ids[-1] == policy.eos_token_id else "length")
    assert resp.usage is not None and resp.usage.prompt_tokens == len(extra["prompt_token_ids"])
    plain = client.chat.completions.create(model="m", messages=messages, max_tokens=2)
    assert "prompt_token_ids" not in (plain.model_extra or {})  # only on request, as vLLM
    assert [m.id for m in client.models.list()] == [server.model_name]


def test_streaming_with_token_ids(server: PolicyServer, policy: Any) -> None:
    client = _client(server.endpoint)
    stream = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "dab"}],
        max_tokens=4,
        n=2,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"return_token_ids": True},
    )
    text = {0: "", 1: ""}
    ids: dict = {0: [], 1: []}
    finish = {}
    prompt_ids = None
    usage = None
    for chunk in stream:
        extra = chunk.model_extra or {}
        prompt_ids = extra.get("prompt_token_ids", prompt_ids)
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text[choice.index] += choice.delta.content or ""
            ids[choice.index] += (choice.model_extra or {}).get("token_ids") or []
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    assert prompt_ids == policy.encode_chat([{"role": "user", "content": "dab"}])
    for i in (0, 1):
        assert ids[i] and text[i] == policy.decode(ids[i]) and finish[i] in ("stop", "length")
    assert usage is not None and usage.completion_tokens == len(ids[0]) + len(ids[1])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "a"}], "n": 0}, "n"),
        ({"messages": [{"role": "user", "content": "a"}], "temperature": -1}, "temperature"),
        ({"messages": [{"role": "user", "content": "a"}], "max_tokens": 1000}, "messages"),
    ],
)
def test_bad_requests_name_the_parameter(server: PolicyServer, body: dict, param: str) -> None:
    import httpx

    resp = httpx.post(server.endpoint + "/chat/completions", json={"model": "m", **body}, timeout=30)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        _client(server.endpoint).chat.completions.create(model="m", **body)  # type: ignore[arg-type]


def test_concurrent_requests_are_batched(server: PolicyServer) -> None:
    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=server.endpoint, api_key="unused", max_retries=0)
        async with anyio.create_task_group() as tg:
            for _ in range(24):
                tg.start_soon(
                    lambda: client.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": "ab"}], max_tokens=3
                    )
                )

    assert server.batcher is not None
    before_batches, before_requests = server.batcher.batches, server.batcher.requests
    anyio.run(main)
    assert server.batcher.requests - before_requests == 24
    assert server.batcher.batches - before_batches < 24


@pytest.mark.anyio
async def test_calls_under_a_rollout_are_recorded_as_proxy_spans(tmp_path: Any, policy: Any) -> None:
    store = open_store("sqlite:///" + os.path.join(str(tmp_path), "store.db"))
    async with store:
        attempted = await store.start_rollout(input={"keyword": "abc"})
        rid, aid = attempted.rollout_id, attempted.attempt.attempt_id
        server = PolicyServer(policy, store=store).start()
        server.version = 7
        try:
            base = server.endpoint.replace("/v1", f"/rollout/{rid}/attempt/{aid}/v1")

            def calls() -> list:
                client = _client(base)
                first = client.chat.completions.create(
                    model="m",
                    messages=[{"role": "user", "content": "ab"}],
                    max_tokens=3,
                    extra_body={"return_token_ids": True},
                )
                second = client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "cd"}], max_tokens=3, stream=True
                )
                list(second)
                _client(server.endpoint).chat.completions.create(  # outside any rollout: not recorded
                    model="m", messages=[{"role": "user", "content": "x"}], max_tokens=1
                )
                return [first]

            (first,) = await anyio.to_thread.run_sync(calls)
        finally:
            server.stop()
        reward = emit_reward(0.75, propagate=False)
        seq = await store.get_next_span_sequence_id(rid, aid)
        await store.add_span(Span.from_core_fields(reward, rollout_id=rid, attempt_id=aid, sequence_id=seq))
        spans = list(await store.query_spans(rid, aid))
        llm_spans = [s for s in spans if s.name == LLM_SPAN_NAME]
        assert len(llm_spans) == 2 and [s.sequence_id for s in llm_spans] == sorted({s.sequence_id for s in llm_spans})
        span = llm_spans[0]
        assert span.attributes[POLICY_VERSION_ATTRIBUTE] == 7
        assert span.attributes["gen_ai.prompt.0.content"] == "ab"
        assert span.attributes["gen_ai.response.id"] == first.id
        assert span.resource.attributes["agentlightning.rollout_id"] == rid
        triplets = LlmProxyTraceToTriplet().adapt(spans)
        assert len(triplets) == 2
        assert triplets[0].prompt["token_ids"] == (first.model_extra or {})["prompt_token_ids"]
        assert triplets[0].response["token_ids"] == (first.choices[0].model_extra or {})["token_ids"]
        assert [t.reward for t in triplets] == [None, 0.75]  # the reward follows the second call


def test_store_needs_an_event_loop(policy: Any) -> None:
    with pytest.raises(RuntimeError, match="store_url"):
        PolicyServer(policy, store=object()).start()
