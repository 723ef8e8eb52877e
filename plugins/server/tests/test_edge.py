"""The HTTP edge under hostile input: deep JSON, wide integers, compressed bodies, oversized heads, idle
connections, methods and headers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agentlightning.store.limits import MAX_JSON_DEPTH


def _deep_body(depth: int) -> bytes:
    """An enqueue body whose whole JSON nests ``depth`` levels."""
    inner = "[" * (depth - 3) + "1" + "]" * (depth - 3)
    return ('{"rollouts":[{"input":' + inner + "}]}").encode()


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 9, 1_000, 1_100, 100_000])
def test_deep_json_body_is_refused_with_400(served: Any, depth: int) -> None:
    response = served.post(
        "/queues/rollouts/enqueue", content=_deep_body(depth), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "nested more than" in response.json()["detail"]
    assert served.get("/rollouts").status_code == 200
    assert served.post("/queues/rollouts/dequeue", json={}).status_code == 200


def test_deepest_storable_value_round_trips(served: Any) -> None:
    value: Any = 1
    for _ in range(MAX_JSON_DEPTH):
        value = [value]
    response = served.post("/queues/rollouts/enqueue", content=json.dumps({"rollouts": [{"input": value}]}))
    assert response.status_code == 201, response.text
    [listed] = served.get("/rollouts").json()["items"]
    assert listed["input"] == value


@pytest.mark.parametrize("number", ["18446744073709551616", "-9223372036854775809", "1" + "0" * 40])
def test_integers_beyond_64_bits_are_refused(served: Any, number: str) -> None:
    body = '{"rollouts":[{"input":{"n":' + number + "}}]}"
    response = served.post("/queues/rollouts/enqueue", content=body.encode())
    assert response.status_code == 400, response.text
    assert "integer" in response.json()["detail"]
    assert served.get("/rollouts").json()["items"] == []


def test_widest_integers_round_trip_exactly(served: Any) -> None:
    body = '{"rollouts":[{"input":[18446744073709551615,-9223372036854775808]}]}'
    assert served.post("/queues/rollouts/enqueue", content=body.encode()).status_code == 201
    raw = served.get("/rollouts").content
    assert b"[18446744073709551615,-9223372036854775808]" in raw


def test_405_names_the_allowed_methods(served: Any) -> None:
    response = served.delete("/queues/rollouts/enqueue")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert "not allowed" in response.json()["detail"]


def test_duplicate_authorization_headers_are_refused() -> None:
    import httpx
    from agentlightning_memory import InMemoryLightningStore
    from agentlightning_server import LightningStoreServer

    with LightningStoreServer(InMemoryLightningStore(watchdog_interval=None), port=0, token="right") as server:
        url = server.endpoint + "/v1/agl/rollouts"
        with httpx.Client() as http:
            assert http.get(url, headers={"Authorization": "Bearer right"}).status_code == 200
            for pair in (["Bearer right", "Bearer wrong"], ["Bearer wrong", "Bearer right"], ["Bearer right"] * 2):
                headers = [("Authorization", value) for value in pair]
                response = http.get(url, headers=headers)
                assert response.status_code == 400, (pair, response.text)
                assert "more than one Authorization header" in response.json()["detail"]
