"""AgentOpsTracer with the real agentops package and the real openai client against the local test server."""

from __future__ import annotations

import json
import socket
from typing import Any, List

import openai
import pytest
import socket_guard
from agentlightning.adapter import TracerTraceToTriplet
from agentlightning.emitter import emit_reward
from agentlightning.testing.openai_server import OpenAITestServer, fake_tokenize

pytestmark = [pytest.mark.anyio, pytest.mark.network]

CHAT = "openai.chat.completion"
TOKENS = {"return_token_ids": True}


@pytest.fixture(autouse=True)
def _guard(monkeypatch: pytest.MonkeyPatch) -> List[Any]:
    """Every test here runs with connections refused to anything but 127.0.0.1 / localhost."""
    monkeypatch.setattr(socket_guard, "attempts", [])
    monkeypatch.setattr(socket.socket, "connect", socket_guard._guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", socket_guard._guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", socket_guard._guarded_getaddrinfo)
    yield socket_guard.attempts
    assert socket_guard.attempts == [], "a connection left 127.0.0.1"


def _messages(text: str = "hi") -> List[Any]:
    return [{"role": "user", "content": text}]


def _by_name(spans: List[Any], name: str) -> List[Any]:
    return [s for s in spans if s.name == name]


async def test_spans_reach_store_with_token_ids_and_adapt_to_triplets(
    tracer: Any, memory_store: Any, openai_server: OpenAITestServer
) -> None:
    client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    rollout = await memory_store.start_rollout({"q": 1})
    attempt_id = rollout.attempt.attempt_id
    async with tracer.trace_context("agent", store=memory_store, rollout_id=rollout.rollout_id, attempt_id=attempt_id):
        answers = []
        for text in ("one", "two"):
            response = await client.chat.completions.create(
                model="m", messages=_messages(text), extra_body=TOKENS, logprobs=True
            )
            answers.append(response.choices[0].message.content)
        emit_reward(0.5)
    await client.close()

    spans = list(await memory_store.query_spans(rollout.rollout_id))
    assert {(s.rollout_id, s.attempt_id) for s in spans} == {(rollout.rollout_id, attempt_id)}
    assert len({s.sequence_id for s in spans}) == len(spans)
    (session,) = _by_name(spans, "agent.session")
    assert session.parent_id is None
    chats = sorted(_by_name(spans, CHAT), key=lambda s: s.start_time)
    assert len(chats) == 2
    for chat, answer in zip(chats, answers):
        assert chat.parent_id == session.span_id
        assert chat.attributes["response_token_ids"] == fake_tokenize(answer)
        assert chat.attributes["prompt_token_ids"]
        assert json.loads(chat.attributes["logprobs.content"])[0]["token"]

    triplets = TracerTraceToTriplet().adapt(spans)
    assert [t.response["token_ids"] for t in triplets] == [fake_tokenize(a) for a in answers]
    assert [t.reward for t in triplets] == [None, 0.5]
    assert triplets[0].prompt["token_ids"] == list(chats[0].attributes["prompt_token_ids"])


async def test_sync_raw_response_client_gets_token_ids(
    tracer: Any, memory_store: Any, openai_server: OpenAITestServer
) -> None:
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    rollout = await memory_store.start_rollout({})
    async with tracer.trace_context(
        store=memory_store, rollout_id=rollout.rollout_id, attempt_id=rollout.attempt.attempt_id
    ):
        raw = client.chat.completions.with_raw_response.create(model="m", messages=_messages("raw"), extra_body=TOKENS)
        parsed = raw.parse()
    client.close()
    assert parsed.choices[0].message.content == "echo: raw"  # the caller still gets its response
    (chat,) = _by_name(list(await memory_store.query_spans(rollout.rollout_id)), CHAT)
    assert chat.attributes["response_token_ids"] == fake_tokenize("echo: raw")
    assert chat.attributes["gen_ai.completion.0.content"] == "echo: raw"
    assert chat.attributes["gen_ai.response.id"] == parsed.id


async def test_streamed_call_gets_token_ids(tracer: Any, memory_store: Any, openai_server: OpenAITestServer) -> None:
    client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    rollout = await memory_store.start_rollout({})
    async with tracer.trace_context(
        store=memory_store, rollout_id=rollout.rollout_id, attempt_id=rollout.attempt.attempt_id
    ):
        stream = await client.chat.completions.create(
            model="m", messages=_messages("streamed"), extra_body=TOKENS, stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await client.close()
    assert text == "echo: streamed"
    (chat,) = _by_name(list(await memory_store.query_spans(rollout.rollout_id)), CHAT)
    assert chat.attributes["response_token_ids"] == fake_tokenize("echo: streamed")
    assert chat.attributes["prompt_token_ids"]
    (triplet,) = TracerTraceToTriplet().adapt(list(await memory_store.query_spans(rollout.rollout_id)))
    assert triplet.response["token_ids"] == fake_tokenize("echo: streamed")


async def test_no_token_ids_when_not_asked(tracer: Any, openai_server: OpenAITestServer) -> None:
    client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    async with tracer.trace_context("plain"):
        await client.chat.completions.create(model="m", messages=_messages())
    await client.close()
    (chat,) = _by_name(tracer.get_last_trace(), CHAT)
    assert "prompt_token_ids" not in chat.attributes
    assert "response_token_ids" not in chat.attributes


async def test_error_in_body_ends_agentops_trace_with_error_and_reraises(tracer: Any) -> None:
    with pytest.raises(KeyError, match="boom"):
        async with tracer.trace_context("failing"):
            tracer.create_span("inside", {"k": 1})
            raise KeyError("boom")
    spans = tracer.get_last_trace()
    (session,) = _by_name(spans, "failing.session")
    assert session.attributes["agentops.session.end_state"] == "ERROR"
    assert session.status.status_code == "ERROR"
    assert "boom" in (session.status.description or "")
    assert _by_name(spans, "inside")[0].attributes["k"] == 1

    async with tracer.trace_context("fine"):
        pass
    (session,) = _by_name(tracer.get_last_trace(), "fine.session")
    assert session.attributes["agentops.session.end_state"] == "OK"
    assert session.status.status_code == "OK"


async def test_failed_llm_call_is_an_error_span(tracer: Any) -> None:
    from agentlightning.testing.openai_server import ErrorReply

    with OpenAITestServer(lambda request: ErrorReply(400, "bad request")) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        async with tracer.trace_context("t"):
            with pytest.raises(openai.BadRequestError):
                await client.chat.completions.create(model="m", messages=_messages())
        await client.close()
    (chat,) = _by_name(tracer.get_last_trace(), CHAT)
    assert chat.status.status_code == "ERROR"


async def test_operation_context_and_emitters(tracer: Any, memory_store: Any) -> None:
    rollout = await memory_store.start_rollout({})
    async with tracer.trace_context(
        store=memory_store, rollout_id=rollout.rollout_id, attempt_id=rollout.attempt.attempt_id
    ):
        with tracer.operation_context("step", {"a": "b"}) as op:
            op.record_attributes({"c": 2})
        emit_reward(1.0)
    spans = list(await memory_store.query_spans(rollout.rollout_id))
    names = sorted(s.name for s in spans)
    assert names == sorted(["step", "agentlightning.annotation", f"{rollout.rollout_id}.session"])
    (step,) = _by_name(spans, "step")
    assert step.attributes["a"] == "b" and step.attributes["c"] == 2


async def test_teardown_stops_instrumentation_and_restores_agentops(openai_server: OpenAITestServer) -> None:
    from agentlightning_agentops import AgentOpsTracer
    from agentlightning_agentops.instrumentation import is_patched
    from agentops.instrumentation.providers.openai import stream_wrapper

    original = stream_wrapper.handle_chat_attributes
    tracer = AgentOpsTracer()
    tracer.init_worker(0)
    assert is_patched()
    assert stream_wrapper.handle_chat_attributes is not original
    tracer.teardown_worker(0)
    assert not is_patched()
    assert stream_wrapper.handle_chat_attributes is original
    for cls in (openai.resources.chat.completions.Completions, openai.resources.chat.completions.AsyncCompletions):
        assert not hasattr(cls.__dict__["create"], "_self_wrapper"), "AgentOps' wrapper left on openai"

    # set up again: works as before
    tracer.init_worker(1)
    try:
        client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
        async with tracer.trace_context("again"):
            await client.chat.completions.create(model="m", messages=_messages(), extra_body=TOKENS)
        await client.close()
        (chat,) = _by_name(tracer.get_last_trace(), CHAT)
        assert chat.attributes["response_token_ids"] == fake_tokenize("echo: hi")
    finally:
        tracer.teardown_worker(1)


async def test_two_tracers_share_the_patches(tracer: Any, openai_server: OpenAITestServer) -> None:
    from agentlightning_agentops import AgentOpsTracer
    from agentlightning_agentops.instrumentation import is_patched

    client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    second = AgentOpsTracer()
    second.init_worker(1)
    second.teardown_worker(1)
    assert is_patched(), "the first tracer's patches were removed by the second one's teardown"
    async with tracer.trace_context("first"):
        await client.chat.completions.create(model="m", messages=_messages(), extra_body=TOKENS)
    assert _by_name(tracer.get_last_trace(), CHAT)[0].attributes["response_token_ids"] == fake_tokenize("echo: hi")

    # the other order: the tracer that turned AgentOps' instrumentation on stops first
    tracer.teardown_worker(0)
    second.init_worker(1)
    try:
        third = AgentOpsTracer()
        third.init_worker(2)
        second.teardown_worker(1)
        async with third.trace_context("third"):
            await client.chat.completions.create(model="m", messages=_messages(), extra_body=TOKENS)
        chats = _by_name(third.get_last_trace(), CHAT)
        assert len(chats) == 1 and chats[0].attributes["response_token_ids"] == fake_tokenize("echo: hi")
        third.teardown_worker(2)
    finally:
        tracer.init_worker(0)  # the fixture tears it down
    await client.close()


async def test_explicit_provider_also_collects_agentops_spans(openai_server: OpenAITestServer) -> None:
    from agentlightning_agentops import AgentOpsTracer
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    tracer = AgentOpsTracer(tracer_provider=provider)
    tracer.init_worker(0)
    try:
        assert tracer.tracer_provider is provider
        client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
        async with tracer.trace_context("explicit"):
            await client.chat.completions.create(model="m", messages=_messages(), extra_body=TOKENS)
            emit_reward(1.0)
        await client.close()
    finally:
        tracer.teardown_worker(0)
    names = sorted(s.name for s in tracer.get_last_trace())
    assert names == ["agentlightning.annotation", "explicit.session", CHAT], names


def test_trace_context_needs_init_worker() -> None:
    import anyio
    from agentlightning_agentops import AgentOpsTracer

    async def main() -> None:
        async with AgentOpsTracer().trace_context("x"):
            pass

    with pytest.raises(RuntimeError, match="init_worker"):
        anyio.run(main)


async def test_langchain_runnables_without_serialized_keep_their_names(tracer: Any) -> None:
    """LangChain passes ``serialized=None`` for runnables; the patched handler names their spans after them."""
    pytest.importorskip("langchain_core")
    from langchain_core.runnables import RunnableLambda

    handler = tracer.get_langchain_handler(tags=["t"])
    assert type(handler).__name__ == "LangchainCallbackHandler"
    chain = RunnableLambda(lambda x: x + 1, name="add_one") | RunnableLambda(lambda x: x * 2, name="double")
    async with tracer.trace_context("lc"):
        assert chain.invoke(1, config={"callbacks": [handler]}) == 4
    chains = [s for s in tracer.get_last_trace() if "langchain.chain.type" in s.attributes]
    assert sorted(s.attributes["langchain.chain.type"] for s in chains) == ["RunnableSequence", "add_one", "double"]
    assert all(s.attributes["langchain.chain.name"] != "unknown_chain" for s in chains)
    (sequence,) = [s for s in chains if s.attributes["langchain.chain.type"] == "RunnableSequence"]
    assert {s.parent_id for s in chains if s is not sequence} == {sequence.span_id}
