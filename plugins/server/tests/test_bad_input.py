"""Hypothesis-generated requests: never a 5xx, and a refused request changes nothing in the store."""

from __future__ import annotations

from typing import Any, Dict, Iterator, Tuple

import httpx
import pytest
from agentlightning.types.serialization import to_dict
from agentlightning_server.app import ServerSettings
from agentlightning_server.routes import ROUTES
from agentlightning_server.testing import StoreHost
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIELDS = sorted(
    {
        "input", "mode", "resources_id", "config", "metadata", "worker_id", "rollouts", "limit", "offset", "sort_by",
        "sort_order", "filter_logic", "status_in", "rollout_id_in", "rollout_id_contains", "status", "rollout_ids",
        "mode_in",
        "timeout", "rollout_id", "attempt_id", "spans", "rollout_attempt_ids", "heartbeat_stats",
        "last_heartbeat_time", "name_contains", "worker_id_contains", "resources_id_contains", "trace_id", "llm",
    }
)  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={key: json_values for key in FIELDS}),
)


@pytest.fixture(scope="module")
def world() -> Iterator[Tuple[StoreHost, str, Dict[str, str]]]:
    """A store with one rollout (running attempt, one span), one resources snapshot and one worker."""
    from agentlightning_memory import InMemoryLightningStore

    with StoreHost(ServerSettings(max_body_bytes=64 * 1024, max_wait_seconds=0.05)) as host:
        key, url = host.add(lambda: InMemoryLightningStore(watchdog_interval=None))
        api = url + "/v1/agl"
        with httpx.Client(base_url=api, verify=False) as http:  # noqa: S501 - plain HTTP
            http.post("/queues/rollouts/enqueue", json={"rollouts": [{"input": "seed"}]})
            [claimed] = http.post("/queues/rollouts/dequeue", json={"worker_id": "w-seed"}).json()
            resources = http.post("/resources", json={"p": {"resource_type": "prompt_template", "template": "x"}})
        ids = {
            "rollout_id": claimed["rollout_id"],
            "attempt_id": claimed["attempt"]["attempt_id"],
            "resources_id": resources.json()["resources_id"],
            "worker_id": "w-seed",
        }
        yield host, key, ids


def _snapshot(host: StoreHost, key: str, rollout_id: str) -> Any:
    store = host.backing_store(key)

    async def take() -> Any:
        stats = dict(await store.statistics())
        stats.pop("uptime", None)
        return to_dict(
            [
                stats,
                list(await store.query_rollouts()),
                list(await store.query_attempts(rollout_id)),
                list(await store.query_spans(rollout_id)),
                list(await store.query_resources()),
                list(await store.query_workers()),
                await store.get_latest_resources(),
            ]
        )

    return host.server.run_in_server_loop(take)


def _check(host: StoreHost, key: str, ids: Dict[str, str], method: str, path: str, **request: Any) -> None:
    before = _snapshot(host, key, ids["rollout_id"])
    url = host.server.endpoint + f"/s/{key}" + path
    response = _HTTP.request(method, url, timeout=30, **request)
    assert response.status_code < 500, (method, path, request, response.text)
    if response.status_code >= 400:
        payload = response.json()
        assert payload["detail"] and payload["error_type"], payload
        assert _snapshot(host, key, ids["rollout_id"]) == before, (method, path, request, payload)


_HTTP = httpx.Client(verify=False)  # noqa: S501 - one pooled plain-HTTP client: a new one per request costs a TLS context each

ROUTE_CHOICES = [(spec.method, spec.path) for spec in ROUTES]


def _fill(path: str, ids: Dict[str, str], garbage: str) -> str:
    filled = path
    for name, value in ids.items():
        filled = filled.replace("{" + name + "}", value if not garbage else garbage)
    return "/v1/agl" + filled


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(ROUTE_CHOICES), body=bodies, garbage_ids=st.sampled_from(["", "", "ro-missing", "%20x"]))
def test_random_json_bodies(world: Any, route: Tuple[str, str], body: Any, garbage_ids: str) -> None:
    host, key, ids = world
    method, path = route
    if method == "GET":
        _check(host, key, ids, method, _fill(path, ids, garbage_ids))
    else:
        _check(host, key, ids, method, _fill(path, ids, garbage_ids), json=body)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    route=st.sampled_from([r for r in ROUTE_CHOICES if r[0] == "GET"]),
    params=st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=10) | st.integers().map(str), max_size=4),
)
def test_random_query_strings(world: Any, route: Tuple[str, str], params: Dict[str, str]) -> None:
    host, key, ids = world
    _check(host, key, ids, "GET", _fill(route[1], ids, ""), params=params)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from([r for r in ROUTE_CHOICES if r[0] == "POST"]), raw=st.binary(max_size=64))
def test_random_bytes(world: Any, route: Tuple[str, str], raw: bytes) -> None:
    host, key, ids = world
    _check(host, key, ids, "POST", _fill(route[1], ids, ""), content=raw, headers={"Content-Type": "application/json"})


def test_oversized_and_unknown(world: Any) -> None:
    host, key, ids = world
    _check(host, key, ids, "POST", "/v1/agl/queues/rollouts/enqueue", json={"rollouts": [{"input": "x" * 100_000}]})
    _check(host, key, ids, "POST", "/v1/agl/spans/batch", content=b"[" * 70_000)
    _check(host, key, ids, "PUT", "/v1/agl/rollouts")
    _check(host, key, ids, "GET", "/v1/agl/nothing/here")
    _check(
        host, key, ids, "POST", "/v1/traces", content=b"\x00" * 10, headers={"Content-Type": "application/x-protobuf"}
    )
    _check(host, key, ids, "POST", "/v1/traces", content=b"x", headers={"Content-Type": "application/json"})
