"""token_attributes: the token-id and logprob attributes of a chat completion, from the shapes servers return."""

from __future__ import annotations

import json

import pytest
from agentlightning_agentops.instrumentation import token_attributes
from hypothesis import given
from hypothesis import strategies as st

ids = st.lists(st.integers(min_value=0, max_value=2**31), min_size=1, max_size=50)


@given(prompt=ids, response=ids)
def test_vllm_fields(prompt: list, response: list) -> None:
    body = {"id": "x", "prompt_token_ids": prompt, "choices": [{"message": {"content": "a"}, "token_ids": response}]}
    assert token_attributes(body) == {"prompt_token_ids": prompt, "response_token_ids": response}


def test_older_vllm_and_litellm_fallbacks() -> None:
    older = {"choices": [{"message": {}}], "response_token_ids": [[4, 5, 6]], "prompt_token_ids": [1, 2, 3]}
    assert token_attributes(older) == {"prompt_token_ids": [1, 2, 3], "response_token_ids": [4, 5, 6]}
    litellm = {"choices": [{"message": {}, "provider_specific_fields": {"token_ids": [7, 8]}}]}
    assert token_attributes(litellm) == {"response_token_ids": [7, 8]}


def test_logprobs_content_and_refusal_are_json() -> None:
    content = [{"token": "a", "logprob": -0.1, "bytes": [97], "top_logprobs": []}]
    refusal = [{"token": "no", "logprob": -2.0, "bytes": None, "top_logprobs": []}]
    out = token_attributes({"choices": [{"message": {}, "logprobs": {"content": content, "refusal": refusal}}]})
    assert json.loads(out["logprobs.content"]) == content
    assert json.loads(out["logprobs.refusal"]) == refusal


@pytest.mark.parametrize(
    "response",
    [
        None,
        {},
        {"choices": []},
        {"choices": [{"token_ids": ["a", "b"]}]},
        {"prompt_token_ids": [True]},
        object(),
        {"choices": 5},
    ],
)
def test_nothing_or_junk_gives_no_attributes(response: object) -> None:
    assert token_attributes(response) == {}
