"""Pieces that need neither LiteLLM nor a server: routing, settings, resources, errors, OTLP encoding, the CLI."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agentlightning.types.resources import LLM, ProxyLLM
from agentlightning_litellm.capture import CallRecord, call_spans
from agentlightning_litellm.cli import configure_parser, model_list_from_args
from agentlightning_litellm.gateway import error_of
from agentlightning_litellm.otlp import encode_export_request
from agentlightning_litellm.proxy import LLMProxy
from agentlightning_litellm.routing import endpoint_kind, split_rollout_path
from agentlightning_litellm.settings import ProxySettings
from hypothesis import given
from hypothesis import strategies as st

ids = st.text(alphabet=st.characters(blacklist_characters="/%?#", blacklist_categories=("Cs", "Cc")), min_size=1)


@given(ids, ids, st.sampled_from(["/v1/chat/completions", "/chat/completions", "/v1/messages", ""]))
def test_rollout_paths_split_into_ids_and_backend_path(rollout_id: str, attempt_id: str, rest: str) -> None:
    routed = split_rollout_path(f"/rollout/{rollout_id}/attempt/{attempt_id}{rest}")
    assert (routed.rollout_id, routed.attempt_id, routed.path) == (rollout_id, attempt_id, rest or "/")


def test_bare_paths_and_endpoint_kinds() -> None:
    assert split_rollout_path("/v1/chat/completions").rollout_id is None
    assert split_rollout_path("/rollout/r/attempt/a%2Fb/v1/x").attempt_id == "a/b"
    assert [endpoint_kind(p) for p in ("/v1/chat/completions", "/completions/", "/v1/messages", "/v1/responses")] == [
        "chat", "completion", "anthropic", "responses",
    ]  # fmt: skip
    assert endpoint_kind("/v1/embeddings") is None


def test_model_lists_are_checked_with_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"model_list\[0\] needs a non-empty string 'model_name'"):
        ProxySettings(model_list=[{"litellm_params": {"model": "x"}}])
    with pytest.raises(ValueError, match=r"model_list\[0\] \('m'\) needs 'litellm_params' with a string 'model'"):
        ProxySettings(model_list=[{"model_name": "m", "litellm_params": {}}])
    with pytest.raises(ValueError, match="model_list must be a list"):
        LLMProxy(model_list={"m": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid callback alias"):
        LLMProxy(callbacks=["nope"])
    with pytest.raises(ValueError, match="launch_mode must be one of"):
        LLMProxy(launch_mode="gunicorn")
    with pytest.raises(ValueError, match="port must be"):
        LLMProxy(port=70000)


def _entry(name: str) -> dict:
    return {"model_name": name, "litellm_params": {"model": f"hosted_vllm/{name}", "api_base": "http://127.0.0.1:9"}}


def test_as_resource_gives_a_proxy_llm_or_an_llm_bound_to_an_attempt() -> None:
    proxy = LLMProxy(port=4999, model_list=[_entry("policy"), _entry("policy")])
    resource = proxy.as_resource(sampling_parameters={"temperature": 0.7})
    assert isinstance(resource, ProxyLLM)
    assert (resource.endpoint, resource.model, resource.sampling_parameters) == (
        "http://127.0.0.1:4999", "policy", {"temperature": 0.7},
    )  # fmt: skip
    assert resource.get_base_url("ro-1", "at-1") == "http://127.0.0.1:4999/rollout/ro-1/attempt/at-1"
    bound = proxy.as_resource("ro-1", "at-1")
    assert type(bound) is LLM and bound.endpoint == "http://127.0.0.1:4999/rollout/ro-1/attempt/at-1"
    with pytest.raises(ValueError, match="both rollout_id and attempt_id"):
        proxy.as_resource("ro-1")
    two = LLMProxy(port=4999, model_list=[_entry("a"), _entry("b")])
    with pytest.raises(ValueError, match="needs model= when the proxy serves 2 model names"):
        two.as_resource()
    assert two.as_resource(model="b").model == "b"
    with pytest.raises(RuntimeError, match="no port yet"):
        LLMProxy(model_list=[_entry("a")]).as_resource()


def test_update_model_list_on_a_stopped_proxy_only_replaces_the_list() -> None:
    proxy = LLMProxy(port=4999, model_list=[_entry("a")])
    proxy.update_model_list([_entry("b")])
    assert not proxy.is_running() and proxy.as_resource().model == "b"
    assert proxy.settings().model_list == [_entry("b")]
    with pytest.raises(ValueError, match="needs 'litellm_params'"):
        proxy.update_model_list([{"model_name": "c"}])


def test_errors_keep_their_status_and_kind() -> None:
    class ContextWindowExceededError(Exception):
        status_code = 400
        message = "too long"

    class Timeout(Exception):
        status_code = 408

    class Weird(Exception):
        status_code = "x"

    assert error_of(ContextWindowExceededError()).type == "context_length_exceeded"
    assert (error_of(Timeout("slow")).status, error_of(Timeout("slow")).type) == (408, "timeout")
    assert (error_of(Weird("?")).status, error_of(Weird("?")).type) == (500, "api_error")


def test_otlp_encoding_reads_back_through_the_store_server() -> None:
    import anyio
    from agentlightning.utils.otlp import spans_from_proto
    from agentlightning_server.otlp import parse_protobuf

    record = CallRecord(kind="chat", request={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    record.response = {
        "id": "c1",
        "prompt_token_ids": [1],
        "choices": [{"message": {"content": "x"}, "token_ids": [2]}],
    }
    spans = call_spans(record, "ro", "at", 3)
    request = parse_protobuf(encode_export_request(spans).SerializeToString())
    assert request.resource_spans[0].resource.attributes[3].value.int_value == 3  # agentlightning.span_sequence_id

    async def no_ids(ids: Any) -> Any:
        raise AssertionError(f"every span carries its sequence id: {ids}")

    back = anyio.run(spans_from_proto, request, no_ids)
    assert [s.name for s in back] == ["litellm_request", "raw_gen_ai_request"]
    assert [(s.rollout_id, s.attempt_id, s.sequence_id) for s in back] == [("ro", "at", 3)] * 2
    root = back[0]
    assert root.attributes["prompt_token_ids"] == [1] and root.attributes["response_token_ids"] == [2]
    assert root.attributes["gen_ai.request.streaming"] is False
    assert root.attributes == spans[0].attributes
    assert back[1].parent_id == spans[0].span_id


def test_cli_builds_a_model_list(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    listing = tmp_path / "models.json"
    listing.write_text(json.dumps({"model_list": [_entry("from-file")]}))
    args = parser.parse_args(
        ["serve", "--model", "q=hosted_vllm/Qwen@http://127.0.0.1:8000/v1", "--model-list", str(listing)]
    )
    assert args.func.__name__ == "serve_command"
    assert model_list_from_args(args) == [
        _entry("from-file"),
        {"model_name": "q", "litellm_params": {"model": "hosted_vllm/Qwen", "api_base": "http://127.0.0.1:8000/v1"}},
    ]
    with pytest.raises(SystemExit, match="NAME=LITELLM_MODEL"):
        model_list_from_args(parser.parse_args(["serve", "--model", "oops"]))


def test_importing_agentlightning_and_the_hooks_does_not_import_litellm() -> None:
    code = (
        "import sys, agentlightning, agentlightning_litellm, agentlightning_litellm.hooks\n"
        "cls = agentlightning.LLMProxy\n"
        "heavy = [m for m in ('litellm', 'starlette', 'uvicorn', 'openai', 'httpx') if m in sys.modules]\n"
        "assert cls.__name__ == 'LLMProxy', cls\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_backend_requests_ask_for_token_ids_and_logprobs_as_configured() -> None:
    from agentlightning_litellm.gateway import Gateway

    entry = _entry("m")
    body = {"model": "m", "messages": [], "temperature": 0.2}
    plain = Gateway(ProxySettings(model_list=[entry], num_retries=2, timeout=9.0), None)
    kwargs = plain._kwargs("chat", body, plain.deployments.pick("m"))
    assert kwargs == {
        "messages": [], "temperature": 0.2, "return_token_ids": True, "num_retries": 2, "timeout": 9.0,
        "model": "hosted_vllm/m", "api_base": "http://127.0.0.1:9",
    }  # fmt: skip
    assert plain._kwargs("anthropic", body, plain.deployments.pick("m"))["return_token_ids"] is True
    assert "return_token_ids" not in plain._kwargs("responses", body, plain.deployments.pick("m"))
    both = Gateway(ProxySettings(model_list=[entry], logprobs=True, return_token_ids=False), None)
    assert both._kwargs("chat", body, entry["litellm_params"])["logprobs"] is True
    assert both._kwargs("completion", body, entry["litellm_params"])["logprobs"] == 1
    assert "return_token_ids" not in both._kwargs("chat", body, entry["litellm_params"])


def test_deployments_round_robin_and_wildcards() -> None:
    from agentlightning_litellm.deployments import Deployments

    two = Deployments([_entry("m"), {"model_name": "m", "litellm_params": {"model": "openai/other"}}])
    assert [two.pick("m")["model"] for _ in range(3)] == ["hosted_vllm/m", "openai/other", "hosted_vllm/m"]
    wildcard = Deployments([{"model_name": "*", "litellm_params": {"model": "hosted_vllm/*", "api_base": "x"}}])
    assert wildcard.pick("qwen")["model"] == "hosted_vllm/qwen"
    with pytest.raises(LookupError, match="not served by this proxy"):
        two.pick("nope")


class _StallingLiteLLM:
    """Stands in for the ``litellm`` module: a call, or a stream after its first chunk, that never answers (as
    LiteLLM's aiohttp transport can do on a stalled connection)."""

    async def acompletion(self, **kwargs: object) -> object:
        import anyio

        if not kwargs.get("stream"):
            await anyio.sleep_forever()

        async def chunks() -> object:
            yield {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "a"}}]}
            await anyio.sleep_forever()

        return chunks()


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_a_backend_that_never_answers_is_cut_off_by_the_gateway_deadline(stream: bool) -> None:
    from agentlightning_litellm.gateway import Gateway

    gateway = Gateway(ProxySettings(model_list=[_entry("m")], timeout=0.2), None)
    gateway.litellm = _StallingLiteLLM()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    response = await gateway._call("chat", body, None, None)
    if not stream:
        assert response.status_code == 408
        assert json.loads(response.body)["error"]["type"] == "timeout"
        return
    assert response.status_code == 200  # headers went out with the first chunk; the stall ends the stream with an error
    events = [chunk async for chunk in response.body_iterator]
    assert b'"content":"a"' in events[0]
    error = json.loads(events[-1].decode().removeprefix("data: "))["error"]
    assert error["type"] == "timeout" and "did not answer within 0.2 s" in error["message"]
