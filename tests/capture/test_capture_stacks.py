"""Zero-code capture of each popular agent stack, with the real packages from PyPI, against the local test server.

Each stack runs as an agent under ``Trainer.dev`` with the default tracer (nothing instrumented by hand): two
rollouts, each making two LLM calls (a tool call, then the answer after the tool result). Every rollout's spans must
hold the prompt and completion of both calls, and the default triplet adapter must give one triplet per call, the
rollout's reward on the last. Run by the ``capture`` nox session, which installs every stack.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from typing import Any, Awaitable, Callable, Dict, List

import agentlightning as agl
import anyio
import pytest
from agentlightning.adapter import TracerTraceToTriplet, TraceToMessages
from agentlightning.testing.openai_server import OpenAITestServer, Reply, ToolCall
from agentlightning.trainer import Trainer

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM fetches a price list at import otherwise

pytestmark = [
    pytest.mark.network,
    # frameworks' own deprecations and unclosed clients are theirs, not what these tests check
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def need(module: str) -> Any:
    """The stack's module; a skip when it is missing, a failure under the ``capture`` session (which installs all)."""
    if os.environ.get("AGL_CAPTURE_REQUIRE_STACKS"):
        return importlib.import_module(module)
    return pytest.importorskip(module)


ANSWER = "It is sunny in Paris."
TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
QUESTION = "What is the weather in Paris?"


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def _after_tool_result(body: Dict[str, Any]) -> bool:
    """Whether the request's last turn hands back a tool result (in whichever protocol)."""
    if "input" in body:  # Responses
        items = body["input"] if isinstance(body["input"], list) else []
        return bool(items) and items[-1].get("type") == "function_call_output"
    if "contents" in body:  # Gemini
        return any("functionResponse" in p for p in body["contents"][-1].get("parts") or [])
    last = body["messages"][-1]
    if last.get("role") == "tool":
        return True
    content = last.get("content")
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def tool_then_answer(body: Dict[str, Any]) -> Any:
    if _after_tool_result(body) or not body.get("tools"):
        return Reply(content=ANSWER)
    return Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})])


@pytest.fixture(scope="module")
def server() -> Any:
    with OpenAITestServer(tool_then_answer) as srv:
        yield srv


def run_agent(agent: Callable[[OpenAITestServer], Awaitable[None]], server: OpenAITestServer) -> List[List[Any]]:
    """Two rollouts of ``agent`` under ``Trainer.dev`` with the default tracer; the spans of each."""

    @agl.rollout
    async def rollout(task: Dict[str, Any], llm: agl.LLM) -> float:
        await agent(server)
        return float(task["reward"])

    trainer = Trainer(n_runners=1, initial_resources={"llm": agl.LLM(endpoint=server.base_url, model="m")})
    trainer.dev(rollout, [{"reward": 0.25}, {"reward": 0.75}])

    async def spans() -> List[List[Any]]:
        rollouts = (await trainer.store.query_rollouts()).items
        assert [r.status for r in rollouts] == ["succeeded", "succeeded"]
        return [list((await trainer.store.query_spans(r.rollout_id)).items) for r in rollouts]

    return anyio.run(spans)


def check(rollouts: List[List[Any]], calls: int = 2, *, token_ids: bool = False) -> None:
    """Every LLM call has its prompt and completion; one triplet per call, the reward on the last."""
    adapter = TracerTraceToTriplet()
    rewards = []
    for spans in rollouts:
        llm = [s for s in spans if re.search(adapter.llm_call_match, s.name)]
        triplets = adapter.adapt(spans)
        assert len(triplets) == calls, ([s.name for s in spans], len(triplets))
        for triplet in triplets:
            prompt, response = triplet.prompt["raw_content"], triplet.response["raw_content"]
            assert prompt and any(QUESTION in json.dumps(m) for m in prompt), prompt
            assert response and response[0]["role"] == "assistant"
            if token_ids:
                assert triplet.prompt["token_ids"] and triplet.response["token_ids"]
            else:
                assert "token_ids" in triplet.metadata or triplet.prompt["token_ids"]
        first, last = triplets[0], triplets[-1]
        first_calls = first.response["raw_content"][0].get("tool_calls")
        assert first_calls and first_calls[0]["name"] == "get_weather" and "Paris" in first_calls[0]["arguments"]
        assert last.response["raw_content"][0]["content"] == ANSWER
        assert any(m.get("role") == "tool" for m in last.prompt["raw_content"]), last.prompt["raw_content"]
        assert [t.reward for t in triplets[:-1]] == [None] * (calls - 1)
        rewards.append(last.reward)
        assert len(llm) >= calls
        messages = TraceToMessages().adapt(llm)
        assert messages and messages[-1]["messages"][-1]["content"] == ANSWER
    assert rewards == [0.25, 0.75]


# -- openai ----------------------------------------------------------------------------------------------------


def test_openai_chat_completions_with_token_ids(server: OpenAITestServer) -> None:
    import openai

    async def agent(srv: OpenAITestServer) -> None:
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
        messages: List[Any] = [{"role": "user", "content": QUESTION}]
        tools = [{"type": "function", "function": TOOL}]
        ids = {"return_token_ids": True}
        first = await client.chat.completions.create(model="m", messages=messages, tools=tools, extra_body=ids)
        call = first.choices[0].message.tool_calls[0]
        messages += [first.choices[0].message.model_dump(exclude_none=True)]
        messages += [{"role": "tool", "tool_call_id": call.id, "content": get_weather("Paris")}]
        stream = await client.chat.completions.create(
            model="m", messages=messages, tools=tools, stream=True, extra_body=ids
        )
        async for _ in stream:
            pass
        await client.close()

    check(run_agent(agent, server), token_ids=True)


def test_openai_responses_plain_and_streamed(server: OpenAITestServer) -> None:
    import openai

    def agent_sync(srv: OpenAITestServer) -> None:
        client = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
        tools = [{"type": "function", **TOOL}]
        items: List[Any] = [{"role": "user", "content": QUESTION}]
        first = client.responses.create(model="m", input=items, tools=tools)
        call = next(o for o in first.output if o.type == "function_call")
        items += [o.model_dump(exclude_none=True) for o in first.output]
        items += [{"type": "function_call_output", "call_id": call.call_id, "output": get_weather("Paris")}]
        with client.responses.stream(model="m", input=items, tools=tools) as stream:
            assert stream.get_final_response().output_text == ANSWER
        client.close()

    async def agent(srv: OpenAITestServer) -> None:
        await anyio.to_thread.run_sync(agent_sync, srv)

    check(run_agent(agent, server))


def test_openai_async_chat_streams_with_usage(server: OpenAITestServer) -> None:
    import openai

    async def agent(srv: OpenAITestServer) -> None:
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
        messages: List[Any] = [{"role": "user", "content": QUESTION}]
        tools = [{"type": "function", "function": TOOL}]
        usage = {"include_usage": True}
        call: Dict[str, Any] = {"type": "function", "function": {"name": "", "arguments": ""}}
        stream = await client.chat.completions.create(
            model="m", messages=messages, tools=tools, stream=True, stream_options=usage
        )
        async for chunk in stream:  # the last chunk has no choices, only the usage
            for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                call["id"] = call.get("id") or delta.id
                call["function"]["name"] += (delta.function and delta.function.name) or ""
                call["function"]["arguments"] += (delta.function and delta.function.arguments) or ""
        city = json.loads(call["function"]["arguments"])["city"]
        messages += [{"role": "assistant", "tool_calls": [call]}]
        messages += [{"role": "tool", "tool_call_id": call["id"], "content": get_weather(city)}]
        stream = await client.chat.completions.create(
            model="m", messages=messages, tools=tools, stream=True, stream_options=usage
        )
        async for _ in stream:
            pass
        await client.close()

    rollouts = run_agent(agent, server)
    check(rollouts)
    for spans in rollouts:
        for span in [s for s in spans if s.name == "openai.chat.completion"]:
            assert span.attributes["gen_ai.request.streaming"] is True
            assert span.attributes["gen_ai.usage.total_tokens"] > 0  # the usage chunk after the last choice


def test_openai_async_responses_create_stream_and_stream_manager(server: OpenAITestServer) -> None:
    import openai

    async def agent(srv: OpenAITestServer) -> None:
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
        tools = [{"type": "function", **TOOL}]
        items: List[Any] = [{"role": "user", "content": QUESTION}]
        first = None
        async for event in await client.responses.create(model="m", input=items, tools=tools, stream=True):
            if event.type == "response.completed":
                first = event.response
        assert first is not None
        call = next(o for o in first.output if o.type == "function_call")
        items += [o.model_dump(exclude_none=True) for o in first.output]
        items += [{"type": "function_call_output", "call_id": call.call_id, "output": get_weather("Paris")}]
        async with client.responses.stream(model="m", input=items, tools=tools) as stream:
            async for _ in stream:
                pass
            assert (await stream.get_final_response()).output_text == ANSWER
        await client.close()

    check(run_agent(agent, server))


# -- anthropic -------------------------------------------------------------------------------------------------


def test_anthropic_messages_create_and_stream(server: OpenAITestServer) -> None:
    anthropic = need("anthropic")

    async def agent(srv: OpenAITestServer) -> None:
        client = anthropic.AsyncAnthropic(base_url=srv.root_url, api_key="k", max_retries=0)
        tools = [{"name": TOOL["name"], "description": TOOL["description"], "input_schema": TOOL["parameters"]}]
        messages: List[Any] = [{"role": "user", "content": QUESTION}]
        first = await client.messages.create(model="claude", max_tokens=64, messages=messages, tools=tools)
        use = next(b for b in first.content if b.type == "tool_use")
        messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]}]
        result = {"type": "tool_result", "tool_use_id": use.id, "content": get_weather(use.input["city"])}
        messages += [{"role": "user", "content": [result]}]
        async with client.messages.stream(model="claude", max_tokens=64, messages=messages, tools=tools) as stream:
            final = await stream.get_final_message()
        assert final.content[0].text == ANSWER
        await client.close()

    check(run_agent(agent, server))


def test_anthropic_sync_create_streamed_beta_messages_and_stream(server: OpenAITestServer) -> None:
    anthropic = need("anthropic")

    def agent_sync(srv: OpenAITestServer) -> None:
        client = anthropic.Anthropic(base_url=srv.root_url, api_key="k", max_retries=0)
        tools = [{"name": TOOL["name"], "description": TOOL["description"], "input_schema": TOOL["parameters"]}]
        messages: List[Any] = [{"role": "user", "content": QUESTION}]
        stream = client.messages.create(model="claude", max_tokens=64, messages=messages, tools=tools, stream=True)
        events = list(stream)
        start = next(e for e in events if e.type == "content_block_start" and e.content_block.type == "tool_use")
        arguments = "".join(e.delta.partial_json for e in events if e.type == "content_block_delta")
        use = {"type": "tool_use", "id": start.content_block.id, "name": "get_weather", "input": json.loads(arguments)}
        messages += [{"role": "assistant", "content": [use]}]
        result = {"type": "tool_result", "tool_use_id": use["id"], "content": get_weather("Paris")}
        messages += [{"role": "user", "content": [result]}]
        final = client.beta.messages.create(model="claude", max_tokens=64, messages=messages, tools=tools)
        assert final.content[0].text == ANSWER
        with client.messages.stream(model="claude", max_tokens=64, messages=messages, tools=tools) as streamed:
            assert "".join(streamed.text_stream) == ANSWER
        client.close()

    async def agent(srv: OpenAITestServer) -> None:
        await anyio.to_thread.run_sync(agent_sync, srv)

    check(run_agent(agent, server), calls=3)


# -- litellm ---------------------------------------------------------------------------------------------------


def test_litellm_sdk_openai_and_hosted_vllm(server: OpenAITestServer) -> None:
    litellm = need("litellm")

    async def agent(srv: OpenAITestServer) -> None:
        tools = [{"type": "function", "function": TOOL}]
        messages: List[Any] = [{"role": "user", "content": QUESTION}]
        first = await litellm.acompletion(
            model="openai/m", api_base=srv.base_url, api_key="k", messages=messages, tools=tools
        )
        call = first.choices[0].message.tool_calls[0]
        messages += [first.choices[0].message.model_dump(exclude_none=True)]
        messages += [{"role": "tool", "tool_call_id": call.id, "content": get_weather("Paris")}]
        await litellm.acompletion(
            model="hosted_vllm/m", api_base=srv.base_url, api_key="k", messages=messages, tools=tools
        )

    check(run_agent(agent, server))


def test_litellm_sdk_streamed_sync_and_async(server: OpenAITestServer) -> None:
    litellm = need("litellm")
    tools = [{"type": "function", "function": TOOL}]

    def first_call(srv: OpenAITestServer) -> List[Any]:
        messages: List[Any] = [{"role": "user", "content": QUESTION}]
        chunks = list(
            litellm.completion(
                model="openai/m", api_base=srv.base_url, api_key="k", messages=messages, tools=tools, stream=True
            )
        )
        message = litellm.stream_chunk_builder(chunks, messages=messages).choices[0].message
        call = message.tool_calls[0]
        messages += [message.model_dump(exclude_none=True)]
        return messages + [{"role": "tool", "tool_call_id": call.id, "content": get_weather("Paris")}]

    async def agent(srv: OpenAITestServer) -> None:
        messages = await anyio.to_thread.run_sync(first_call, srv)
        stream = await litellm.acompletion(
            model="hosted_vllm/m", api_base=srv.base_url, api_key="k", messages=messages, tools=tools, stream=True
        )
        async for _ in stream:
            pass

    check(run_agent(agent, server))


# -- LangChain / LangGraph -------------------------------------------------------------------------------------


@pytest.mark.parametrize("responses_api", [False, True])
def test_langgraph_react_agent_with_langchain_openai(server: OpenAITestServer, responses_api: bool) -> None:
    need("langgraph")
    langchain_openai = need("langchain_openai")
    from langchain_core.tools import tool
    from langgraph.prebuilt import create_react_agent

    weather = tool(get_weather)

    async def agent(srv: OpenAITestServer) -> None:
        # langchain-openai caches its HTTP client per (base_url, timeout) across event loops; each Trainer.dev runs
        # its own loop, so each case gets its own timeout and hence its own client
        model = langchain_openai.ChatOpenAI(
            model="m",
            base_url=srv.base_url,
            api_key="k",
            max_retries=0,
            timeout=60 + responses_api,
            use_responses_api=responses_api,
        )
        graph = create_react_agent(model, [weather])
        result = await graph.ainvoke({"messages": [("user", QUESTION)]})
        assert result["messages"][-1].text == ANSWER

    check(run_agent(agent, server))


# -- OpenAI Agents SDK -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("api", ["responses", "chat_completions"])
def test_openai_agents_sdk(server: OpenAITestServer, api: str, streamed: bool) -> None:
    agents_sdk = need("agents")
    import openai

    agents_sdk.set_tracing_disabled(True)
    weather = agents_sdk.function_tool(get_weather)

    async def agent(srv: OpenAITestServer) -> None:
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
        if api == "responses":
            model: Any = agents_sdk.OpenAIResponsesModel(model="m", openai_client=client)
        else:
            model = agents_sdk.OpenAIChatCompletionsModel(model="m", openai_client=client)
        assistant = agents_sdk.Agent(name="weather", instructions="Answer briefly.", tools=[weather], model=model)
        if streamed:  # Responses mode streams through with_streaming_response
            run = agents_sdk.Runner.run_streamed(assistant, QUESTION)
            async for _ in run.stream_events():
                pass
            assert run.final_output == ANSWER
        else:
            result = await agents_sdk.Runner.run(assistant, QUESTION)
            assert result.final_output == ANSWER
        await client.close()

    check(run_agent(agent, server))


# -- AutoGen ---------------------------------------------------------------------------------------------------


def test_autogen_assistant_agent(server: OpenAITestServer) -> None:
    agentchat = need("autogen_agentchat.agents")
    models = need("autogen_ext.models.openai")

    async def agent(srv: OpenAITestServer) -> None:
        client = models.OpenAIChatCompletionClient(
            model="m",
            base_url=srv.base_url,
            api_key="k",
            model_info={
                "vision": False,
                "function_calling": True,
                "json_output": False,
                "family": "unknown",
                "structured_output": False,
            },
        )
        assistant = agentchat.AssistantAgent(
            "weather", model_client=client, tools=[get_weather], reflect_on_tool_use=True
        )
        result = await assistant.run(task=QUESTION)
        assert result.messages[-1].content == ANSWER
        await client.close()

    check(run_agent(agent, server))


# -- google-genai ----------------------------------------------------------------------------------------------


def test_google_genai_generate_content_and_stream(server: OpenAITestServer) -> None:
    genai = need("google.genai")
    from google.genai import types

    async def agent(srv: OpenAITestServer) -> None:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=srv.root_url))
        declaration = types.FunctionDeclaration(
            name=TOOL["name"], description=TOOL["description"], parameters_json_schema=TOOL["parameters"]
        )
        config = types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[declaration])],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        contents: List[Any] = [types.Content(role="user", parts=[types.Part.from_text(text=QUESTION)])]
        first = await client.aio.models.generate_content(model="gemini-test", contents=contents, config=config)
        call = first.function_calls[0]
        contents += [first.candidates[0].content]
        reply = types.Part.from_function_response(name=call.name, response={"result": get_weather("Paris")})
        contents += [types.Content(role="user", parts=[reply])]
        text = ""
        async for chunk in await client.aio.models.generate_content_stream(
            model="gemini-test", contents=contents, config=config
        ):
            text += chunk.text or ""
        assert text == ANSWER

    check(run_agent(agent, server))


@pytest.mark.parametrize("streamed", [False, True])
def test_google_genai_automatic_function_calling_is_one_span_per_model_call(
    server: OpenAITestServer, streamed: bool
) -> None:
    genai = need("google.genai")
    from google.genai import types

    def agent_sync(srv: OpenAITestServer) -> None:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=srv.root_url))
        config = types.GenerateContentConfig(tools=[get_weather])
        chunks = client.models.generate_content_stream(model="gemini-test", contents=QUESTION, config=config)
        assert "".join(c.text or "" for c in chunks) == ANSWER

    async def agent(srv: OpenAITestServer) -> None:
        if streamed:  # sync client, streamed
            await anyio.to_thread.run_sync(agent_sync, srv)
            return
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=srv.root_url))
        config = types.GenerateContentConfig(tools=[get_weather])  # the SDK calls the function itself
        response = await client.aio.models.generate_content(model="gemini-test", contents=QUESTION, config=config)
        assert response.text == ANSWER

    rollouts = run_agent(agent, server)
    check(rollouts)
    first = next(s for s in rollouts[0] if s.name == "google_genai.generate_content")
    assert first.attributes["gen_ai.request.functions.0.name"] == "get_weather"
