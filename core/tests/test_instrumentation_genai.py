"""The shared LLM span vocabulary: Responses API (real openai client), Anthropic and Gemini conversions (plain data,
no SDK needed), lazy patching on first import, the triplet's token-id note, and the capture health check."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from typing import Any, Dict, List

import anyio
import anyio.to_thread
import pytest
from agentlightning.adapter import TracerTraceToTriplet, TraceToMessages
from agentlightning.emitter import emit_reward
from agentlightning.instrumentation import anthropic as anthropic_inst
from agentlightning.instrumentation import google_genai as genai_inst
from agentlightning.instrumentation.doctor import CaptureCheck, diagnose
from agentlightning.instrumentation.openai_responses import ResponsesAccumulator, responses_request_attributes
from agentlightning.testing.openai_server import OpenAITestServer, Reply, ScriptedHandler, ToolCall
from agentlightning.tracer.otel import OtelTracer
from agentlightning.types.tracer import Span

openai = pytest.importorskip("openai")

TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]


async def rollout_spans(tracer: OtelTracer, store: Any, agent: Any) -> List[Any]:
    rollout = await store.start_rollout({"q": 1})
    async with tracer.trace_context(
        "agent", store=store, rollout_id=rollout.rollout_id, attempt_id=rollout.attempt.attempt_id
    ):
        await agent()
    return list(await store.query_spans(rollout.rollout_id))


# -- Responses API ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.network
async def test_responses_calls_become_triplets_with_tool_calls_reasoning_and_a_token_id_note(
    otel_tracer: OtelTracer, memory_store: Any, openai_server: OpenAITestServer
) -> None:
    openai_server.handler = ScriptedHandler(
        [Reply(reasoning="need the tool", tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="c1")]), "Sunny."]
    )

    def agent() -> None:
        client = openai.OpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
        image = {"type": "input_image", "image_url": "https://x/cat.png"}
        items: List[Any] = [{"role": "user", "content": [{"type": "input_text", "text": "Weather?"}, image]}]
        first = client.responses.create(model="m", instructions="Be brief.", input=items, tools=TOOLS)
        items += [o.model_dump(exclude_none=True) for o in first.output]
        items += [{"type": "function_call_output", "call_id": "c1", "output": "sunny"}]
        stream = client.responses.create(model="m", input=items, tools=TOOLS, stream=True)
        assert [e.type for e in stream][-1] == "response.completed"
        client.close()
        emit_reward(0.5)

    spans = await rollout_spans(otel_tracer, memory_store, lambda: anyio.to_thread.run_sync(agent))
    llm = [s for s in spans if s.name == "openai.responses"]
    assert len(llm) == 2
    a = llm[0].attributes
    assert (a["gen_ai.prompt.0.role"], a["gen_ai.prompt.0.content"]) == ("system", "Be brief.")
    assert json.loads(a["gen_ai.prompt.1.content"]) == [
        {"type": "text", "text": "Weather?"},
        {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "auto"}},
    ]
    assert a["gen_ai.completion.0.reasoning"] == "need the tool"
    assert a["gen_ai.completion.0.tool_calls.0.name"] == "get_weather"
    assert a["gen_ai.request.functions.0.name"] == "get_weather"
    b = llm[1].attributes
    assert b["gen_ai.request.streaming"] is True and b["gen_ai.completion.0.content"] == "Sunny."
    assert (b["gen_ai.prompt.1.role"], b["gen_ai.prompt.1.tool_calls.0.id"], b["gen_ai.prompt.1.reasoning"]) == (
        "assistant",
        "c1",
        "need the tool",
    )
    assert (b["gen_ai.prompt.2.role"], b["gen_ai.prompt.2.tool_call_id"]) == ("tool", "c1")

    first, second = TracerTraceToTriplet().adapt(spans)
    assert (first.reward, second.reward) == (None, 0.5)
    assert first.prompt["image_urls"] == ["https://x/cat.png"]
    assert first.prompt["token_ids"] == [] and "no token ids" in first.metadata["token_ids"]
    assert "LLM proxy" in first.metadata["token_ids"]
    assert TraceToMessages().adapt(llm)[1]["messages"][-1] == {"role": "assistant", "content": "Sunny."}


@pytest.mark.anyio
@pytest.mark.network
async def test_async_responses_stream_is_reassembled(
    otel_tracer: OtelTracer, memory_store: Any, openai_server: OpenAITestServer
) -> None:
    openai_server.handler = lambda body: Reply(content="one two three")

    async def agent() -> None:
        client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
        async with client.responses.stream(model="m", input="count") as stream:
            assert (await stream.get_final_response()).output_text == "one two three"
        await client.close()

    (span,) = [s for s in await rollout_spans(otel_tracer, memory_store, agent) if s.name == "openai.responses"]
    assert span.attributes["gen_ai.completion.0.content"] == "one two three"
    assert span.attributes["gen_ai.prompt.0.content"] == "count"
    assert span.attributes["gen_ai.response.id"].startswith("resp_")


def test_responses_accumulator_falls_back_to_finished_items() -> None:
    acc = ResponsesAccumulator()
    acc.add({"type": "response.created", "response": {"id": "r1", "model": "m"}})
    item = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "cut"}]}
    acc.add({"type": "response.output_item.done", "output_index": 0, "item": item})
    attributes = acc.attributes()
    assert attributes["gen_ai.response.id"] == "r1" and attributes["gen_ai.completion.0.content"] == "cut"


def test_responses_request_with_plain_string_input() -> None:
    a = responses_request_attributes({"model": "m", "input": "hi", "temperature": 0.2})
    assert (a["gen_ai.prompt.0.role"], a["gen_ai.prompt.0.content"], a["gen_ai.request.temperature"]) == (
        "user",
        "hi",
        0.2,
    )


# -- Anthropic (plain data) ------------------------------------------------------------------------------------


def test_anthropic_request_maps_tool_use_tool_results_images_and_thinking() -> None:
    a = anthropic_inst.request_attributes(
        {
            "model": "claude",
            "system": [{"type": "text", "text": "Be brief."}],
            "max_tokens": 10,
            "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "s"},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}},
                    ],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"}]},
            ],
        }
    )
    assert a["gen_ai.system"] == "anthropic" and a["agentlightning.token_ids"] == "none in protocol"
    assert (a["gen_ai.prompt.0.role"], a["gen_ai.prompt.0.content"]) == ("system", "Be brief.")
    assert json.loads(a["gen_ai.prompt.1.content"])[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAA"},
    }
    assert (a["gen_ai.prompt.2.reasoning"], a["gen_ai.prompt.2.tool_calls.0.arguments"]) == ("hmm", '{"x": 1}')
    assert (a["gen_ai.prompt.3.role"], a["gen_ai.prompt.3.tool_call_id"], a["gen_ai.prompt.3.content"]) == (
        "tool",
        "t1",
        "42",
    )
    assert a["gen_ai.request.functions.0.parameters"] == '{"type": "object"}'


def test_anthropic_stream_events_are_reassembled() -> None:
    acc = anthropic_inst.MessageAccumulator()
    events: List[Dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {"id": "m1", "model": "c", "role": "assistant", "usage": {"input_tokens": 5}},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": " 1}"}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 7}},
    ]
    for event in events:
        acc.add(event)
    a = acc.attributes()
    assert a["gen_ai.completion.0.content"] == "Hello"
    assert json.loads(a["gen_ai.completion.0.tool_calls.0.arguments"]) == {"a": 1}
    assert a["gen_ai.completion.0.finish_reason"] == "tool_calls"
    assert (a["gen_ai.usage.prompt_tokens"], a["gen_ai.usage.completion_tokens"]) == (5, 7)


# -- Gemini (plain data) ---------------------------------------------------------------------------------------


def test_gemini_request_and_streamed_chunks() -> None:
    a = genai_inst.request_attributes(
        {
            "model": "gemini",
            "contents": [
                {"role": "user", "parts": [{"text": "hi"}]},
                {"role": "model", "parts": [{"function_call": {"id": "c", "name": "f", "args": {"x": 1}}}]},
                {"role": "user", "parts": [{"function_response": {"id": "c", "name": "f", "response": {"r": 2}}}]},
            ],
            "config": {"system_instruction": "sys", "temperature": 0.1},
        }
    )
    roles = [a[f"gen_ai.prompt.{i}.role"] for i in range(4)]
    assert roles == ["system", "user", "assistant", "tool"]
    assert a["gen_ai.prompt.3.content"] == '{"r": 2}' and a["gen_ai.request.temperature"] == 0.1
    acc = genai_inst.ChunkAccumulator()
    for piece in ({"thought": True, "text": "think"}, {"text": "Hel"}, {"text": "lo"}):
        acc.add({"candidates": [{"content": {"role": "model", "parts": [piece]}}], "response_id": "g1"})
    acc.add(
        {
            "candidates": [{"content": {"parts": []}, "finish_reason": "STOP"}],
            "usage_metadata": {"prompt_token_count": 3},
        }
    )
    b = acc.attributes()
    assert (b["gen_ai.completion.0.content"], b["gen_ai.completion.0.reasoning"]) == ("Hello", "think")
    assert (b["gen_ai.completion.0.finish_reason"], b["gen_ai.response.id"]) == ("stop", "g1")


def test_gemini_python_function_tools_are_named() -> None:
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return city

    declared = {"function_declarations": [{"name": "f", "parameters_json_schema": {"type": "object"}}]}
    a = genai_inst.request_attributes({"contents": "hi", "config": {"tools": [get_weather, declared]}})
    assert (a["gen_ai.request.functions.0.name"], a["gen_ai.request.functions.0.description"]) == (
        "get_weather",
        "The weather in a city.",
    )
    assert a["gen_ai.request.functions.1.name"] == "f"
    assert a["gen_ai.request.functions.1.parameters"] == '{"type": "object"}'


def test_a_response_that_cannot_be_recorded_still_ends_the_span_and_reaches_the_agent() -> None:
    from agentlightning.instrumentation.genai import Accumulator, TracedStream, _Ender

    class Odd(Accumulator):
        def add(self, chunk: Any) -> None:
            pass

        def attributes(self) -> Dict[str, Any]:
            raise ValueError("a response shape nobody expected")

    class Span:
        ended = False

        def set_attributes(self, attributes: Dict[str, Any]) -> None:
            raise AssertionError("nothing to record")

        def end(self) -> None:
            self.ended = True

    span = Span()
    assert list(TracedStream(iter([1, 2]), _Ender(span, Odd()))) == [1, 2]
    assert span.ended


# -- lazy patching ---------------------------------------------------------------------------------------------


def test_instrument_all_patches_openai_on_its_first_import_only() -> None:
    code = textwrap.dedent(
        """
        import sys
        from agentlightning.instrumentation import instrument_all, uninstrument_all, instrumented_libraries
        assert instrument_all() == [] and "openai" not in sys.modules
        from agentlightning.instrumentation.openai import is_openai_instrumented
        assert not is_openai_instrumented()
        import openai
        from openai.resources.responses import Responses
        assert is_openai_instrumented() and instrumented_libraries() == ["openai"]
        assert hasattr(Responses.create, "__agentlightning_original__")
        uninstrument_all()
        assert not is_openai_instrumented() and not hasattr(Responses.create, "__agentlightning_original__")
        assert not [f for f in sys.meta_path if type(f).__name__ == "_PostImportFinder"]
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_a_library_imported_before_the_tracer_is_patched_once_and_restored_by_the_last_teardown() -> None:
    code = textwrap.dedent(
        """
        import sys
        import openai
        from openai.resources.chat.completions import Completions
        from openai.resources.responses import Responses
        from agentlightning.tracer.otel import OtelTracer
        originals = Completions.__dict__["create"], Responses.__dict__["create"]
        for _ in range(3):
            first, second = OtelTracer(), OtelTracer()
            first.init_worker(0)
            first.init_worker(0)  # a second init of the same tracer takes no second reference
            second.init_worker(1)
            for cls, original in zip((Completions, Responses), originals):
                assert cls.__dict__["create"].__agentlightning_original__ is original  # wrapped once, not twice
            first.teardown_worker(0)
            first.teardown_worker(0)
            assert Completions.__dict__["create"] is not originals[0]  # the second tracer still traces
            second.teardown_worker(1)
            assert (Completions.__dict__["create"], Responses.__dict__["create"]) == originals
            assert not [f for f in sys.meta_path if type(f).__name__ == "_PostImportFinder"]
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# -- capture health --------------------------------------------------------------------------------------------


def span(name: str, **attributes: Any) -> Span:
    return Span.from_attributes(attributes=attributes, rollout_id="r", attempt_id="a", sequence_id=0, name=name)


def test_diagnose_names_missing_spans_and_missing_token_ids() -> None:
    nothing = diagnose([[span("agentlightning.annotation")], []])
    assert len(nothing.problems) == 1 and "no LLM spans in 2 rollout(s)" in nothing.problems[0]
    assert "not instrumented" in nothing.problems[0] and "agentlightning.annotation" in nothing.problems[0]
    assert "from litellm import completion" in nothing.problems[0]  # the one import style patching cannot reach

    responses = diagnose([[span("openai.responses", **{"agentlightning.token_ids": "none in protocol"})]])
    (problem,) = responses.problems
    assert "carries no token ids" in problem and "LLM proxy" in problem

    chat = diagnose([[span("openai.chat.completion")]])
    assert "return_token_ids" in chat.problems[0]

    good = diagnose([[span("openai.chat.completion", prompt_token_ids=[1], response_token_ids=[2])]])
    assert good.problems == [] and good.llm_spans_with_token_ids == 1


@pytest.mark.anyio
async def test_capture_check_warns_once_after_the_first_rollouts(caplog: pytest.LogCaptureFixture) -> None:
    check = CaptureCheck(after=2)
    caplog.set_level(logging.WARNING, logger="agentlightning.instrumentation.doctor")
    kwargs: Any = {"agent": None, "runner": None, "rollout": None}
    await check.on_rollout_end(spans=[span("agentlightning.annotation")], **kwargs)
    assert not caplog.records
    for _ in range(3):
        await check.on_rollout_end(spans=[], **kwargs)
    assert len(caplog.records) == 1 and "no LLM spans" in caplog.records[0].getMessage()

    quiet = CaptureCheck(after=1, need_token_ids=False)
    caplog.clear()
    await quiet.on_rollout_end(spans=[span("openai.chat.completion")], **kwargs)
    assert not caplog.records


def test_agl_doctor_lists_libraries_and_checks_a_store(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from agentlightning.cli.app import main
    from agentlightning.store import open_store

    url = f"sqlite:///{tmp_path}/run.db"

    async def fill() -> None:
        store = open_store(url)
        try:
            rollout = await store.start_rollout({"q": 1})
            await store.add_many_spans(
                [
                    Span.from_attributes(
                        attributes={"gen_ai.system": "openai"},
                        rollout_id=rollout.rollout_id,
                        attempt_id=rollout.attempt.attempt_id,
                        sequence_id=1,
                        name="openai.chat.completion",
                    )
                ]
            )
        finally:
            await store.close()

    anyio.run(fill)
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", "--store", url, "--json"])
    assert exit_info.value.code == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["rollouts"] == 1 and payload["llm_spans"] == 1 and payload["llm_spans_with_token_ids"] == 0
    assert "return_token_ids" in payload["problems"][0]
    assert {lib["library"] for lib in payload["libraries"]} == {"openai", "anthropic", "litellm", "google-genai"}


def test_trainer_warns_when_rollouts_make_no_llm_call(caplog: pytest.LogCaptureFixture) -> None:
    import agentlightning as agl
    from agentlightning.trainer import Trainer

    @agl.rollout
    def no_llm(task: Dict[str, Any], llm: agl.LLM) -> float:
        return 1.0

    caplog.set_level(logging.WARNING, logger="agentlightning.instrumentation.doctor")
    trainer = Trainer(n_runners=1, initial_resources={"llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="m")})
    trainer.dev(no_llm, [{"q": 1}, {"q": 2}, {"q": 3}])
    warnings = [r.getMessage() for r in caplog.records if r.name == "agentlightning.instrumentation.doctor"]
    assert len(warnings) == 1 and "no LLM spans in 2 rollout(s)" in warnings[0]


def test_the_trainer_checks_capture_unless_the_algorithm_records_llm_calls_itself() -> None:
    import agentlightning as agl
    from agentlightning.trainer.trainer import Trainer

    class Serving:
        records_llm_calls = True

    class Plain:
        pass

    assert Trainer._capture_check(Serving()) == ()
    (check,) = Trainer._capture_check(Plain())
    assert isinstance(check, CaptureCheck) and check.need_token_ids
    # agents that call an LLM proxy (which records every call in the store) are not checked either
    proxied = {"main_llm": agl.ProxyLLM(endpoint="http://127.0.0.1:9/v1", model="m")}
    assert Trainer._capture_check(Plain(), proxied) == ()
    plain = {"main_llm": agl.LLM(endpoint="http://127.0.0.1:9/v1", model="m")}
    assert len(Trainer._capture_check(Plain(), plain)) == 1
