"""The REST contract over raw HTTP: upstream v0.3's routes, statuses and payloads, and our error bodies."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import pytest


def _span(rollout_id: str, attempt_id: str, seq: int, span_id: str, **extra: Any) -> dict:
    trace_id = "ab" * 16
    return {
        "rollout_id": rollout_id,
        "attempt_id": attempt_id,
        "sequence_id": seq,
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_id": None,
        "name": extra.pop("name", "work"),
        "status": {"status_code": "OK", "description": None},
        "attributes": extra.pop("attributes", {"k": 1}),
        "events": [],
        "links": [],
        "start_time": 1.0,
        "end_time": 2.0,
        "context": {"trace_id": trace_id, "span_id": span_id, "is_remote": False, "trace_state": {}},
        "parent": None,
        "resource": {"attributes": {}, "schema_url": ""},
        **extra,
    }


def _claimed(http: httpx.Client, worker_id: str = "w1") -> dict:
    assert http.post("/queues/rollouts/enqueue", json={"rollouts": [{"input": "task"}]}).status_code == 201
    [claimed] = http.post("/queues/rollouts/dequeue", json={"worker_id": worker_id}).json()
    return claimed


def test_health_and_statistics(served: httpx.Client) -> None:
    assert served.get("/health").json() == {"status": "ok"}
    stats = served.get("/statistics").json()
    assert stats["name"] == "InMemoryLightningStore" and stats["total_rollouts"] == 0


def test_enqueue_and_dequeue(served: httpx.Client) -> None:
    body = {"rollouts": [{"input": {"i": i}, "metadata": {"n": i}} for i in range(3)]}
    response = served.post("/queues/rollouts/enqueue", json=body)
    assert response.status_code == 201
    rollouts = response.json()
    assert [r["input"] for r in rollouts] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert all(r["status"] == "queuing" and r["rollout_id"].startswith("ro-") for r in rollouts)
    assert served.post("/queues/rollouts/enqueue", json={"rollouts": []}).json() == []
    assert served.post("/queues/rollouts/dequeue", json={"limit": 0}).json() == []
    one = served.post("/queues/rollouts/dequeue").json()  # no body: limit 1
    assert [r["rollout_id"] for r in one] == [rollouts[0]["rollout_id"]]
    assert one[0]["attempt"]["sequence_id"] == 1 and one[0]["status"] == "preparing"
    two = served.post("/queues/rollouts/dequeue", json={"limit": 5, "worker_id": "w"}).json()
    assert [r["rollout_id"] for r in two] == [r["rollout_id"] for r in rollouts[1:]]
    assert all(r["attempt"]["worker_id"] == "w" for r in two)
    assert served.post("/queues/rollouts/dequeue", json={}).json() == []


def test_start_rollout_and_attempt(served: httpx.Client) -> None:
    response = served.post("/rollouts", json={"input": "x", "worker_id": "w9", "config": {"max_attempts": 3}})
    assert response.status_code == 201
    started = response.json()
    assert started["status"] == "preparing" and started["attempt"]["worker_id"] == "w9"
    assert started["config"]["max_attempts"] == 3
    rid = started["rollout_id"]
    response = served.post(f"/rollouts/{rid}/attempts", json={"worker_id": "w10"})
    assert response.status_code == 201 and response.json()["attempt"]["sequence_id"] == 2
    assert served.get(f"/rollouts/{rid}/attempts/latest").json()["worker_id"] == "w10"
    page = served.get(f"/rollouts/{rid}/attempts", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and page["limit"] == 1 and page["offset"] == 1 and len(page["items"]) == 1
    assert (
        served.post(f"/rollouts/{rid}/attempts/search", json={"sort_order": "desc"}).json()["items"][0]["sequence_id"]
        == 2
    )


def test_get_missing_answers_null(served: httpx.Client) -> None:
    for path in ("/rollouts/ro-missing", "/rollouts/ro-missing/attempts/latest", "/resources/rs-missing",
                 "/resources/latest", "/workers/nobody"):  # fmt: skip
        response = served.get(path)
        assert response.status_code == 200 and response.json() is None, path


def _reward_span(claimed: dict, seq: int, value: float, name: str = "agentlightning.annotation") -> dict:
    attributes = {"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": value}
    aid = claimed["attempt"]["attempt_id"]
    return _span(claimed["rollout_id"], aid, seq, f"r{seq}", name=name, attributes=attributes)


def test_rewards_of_many_rollouts_in_one_request(served: httpx.Client) -> None:
    rewarded, twice, plain = _claimed(served), _claimed(served), _claimed(served)
    spans = [
        _reward_span(rewarded, 1, 0.25),
        _span(twice["rollout_id"], twice["attempt"]["attempt_id"], 1, "w1", name="work"),
        _reward_span(twice, 2, 0.5, name="agentlightning.reward"),
        _reward_span(twice, 3, 1.0),  # the last reward span is the final reward
        _span(plain["rollout_id"], plain["attempt"]["attempt_id"], 1, "p1", name="work"),
    ]
    assert served.post("/spans/batch", json={"spans": spans}).status_code == 201
    ids = [plain["rollout_id"], twice["rollout_id"], "ro-missing", rewarded["rollout_id"], plain["rollout_id"]]
    answer = served.get("/rollouts/rewards", params=[("rollout_id_in", i) for i in ids]).json()
    assert answer == {
        "rewards": [
            {"rollout_id": plain["rollout_id"], "reward": None},
            {"rollout_id": twice["rollout_id"], "reward": 1.0},
            {"rollout_id": "ro-missing", "reward": None},
            {"rollout_id": rewarded["rollout_id"], "reward": 0.25},
        ]
    }
    too_many = served.get("/rollouts/rewards", params=[("rollout_id_in", f"ro-{i}") for i in range(201)])
    assert too_many.status_code == 400 and "at most 200" in too_many.json()["detail"]
    missing = served.get("/rollouts/rewards")
    assert missing.status_code == 400 and "rollout_id_in" in missing.json()["detail"]


def test_query_rollouts_get_and_search_agree(served: httpx.Client) -> None:
    body = {"rollouts": [{"input": i} for i in range(4)]}
    ids = [r["rollout_id"] for r in served.post("/queues/rollouts/enqueue", json=body).json()]
    served.post("/queues/rollouts/dequeue", json={"limit": 1})
    params = [("status_in", "queuing"), ("status_in", "preparing"), ("sort_by", "start_time"), ("limit", "2")]
    got = served.get("/rollouts", params=params).json()
    searched = served.post(
        "/rollouts/search", json={"status_in": ["queuing", "preparing"], "sort_by": "start_time", "limit": 2}
    ).json()
    assert got == searched and got["total"] == 4 and len(got["items"]) == 2
    only = served.get("/rollouts", params=[("rollout_id_in", ids[1]), ("rollout_id_in", ids[2])]).json()
    assert {r["rollout_id"] for r in only["items"]} == {ids[1], ids[2]}
    assert served.post("/rollouts/search", json={"status_in": []}).json()["items"] == []
    served.post(f"/rollouts/{ids[1]}", json={"mode": "val"})
    served.post(f"/rollouts/{ids[2]}", json={"mode": "train"})
    held_out = served.get("/rollouts", params=[("mode_in", "val"), ("mode_in", "test")]).json()
    assert [r["rollout_id"] for r in held_out["items"]] == [ids[1]]
    unset = served.post("/rollouts/search", json={"mode_in": [None, "val"]}).json()
    assert [r["rollout_id"] for r in unset["items"]] == [ids[0], ids[1], ids[3]]
    first = served.get(f"/rollouts/{ids[0]}").json()
    assert "attempt" in first and "attempt" not in served.get(f"/rollouts/{ids[3]}").json()


def test_update_rollout_absent_versus_null(served: httpx.Client) -> None:
    started = served.post("/rollouts", json={"input": "x", "mode": "train", "metadata": {"a": 1}}).json()
    rid = started["rollout_id"]
    updated = served.post(f"/rollouts/{rid}", json={"mode": None, "metadata": {"b": 2}}).json()
    assert updated["mode"] is None and updated["metadata"] == {"b": 2} and updated["input"] == "x"
    assert "attempt" not in updated
    kept = served.post(f"/rollouts/{rid}", json={}).json()
    assert kept["metadata"] == {"b": 2} and kept["status"] == "preparing"
    done = served.post(f"/rollouts/{rid}", json={"status": "succeeded"}).json()
    assert done["status"] == "succeeded" and done["end_time"] is not None


def test_update_attempt_and_worker(served: httpx.Client) -> None:
    claimed = _claimed(served, "w1")
    rid, aid = claimed["rollout_id"], claimed["attempt"]["attempt_id"]
    attempt = served.post(f"/rollouts/{rid}/attempts/latest", json={"metadata": {"m": 1}}).json()
    assert attempt["attempt_id"] == aid and attempt["metadata"] == {"m": 1}
    attempt = served.post(f"/rollouts/{rid}/attempts/{aid}", json={"status": "succeeded"}).json()
    assert attempt["status"] == "succeeded" and attempt["end_time"] is not None
    assert served.get(f"/rollouts/{rid}").json()["status"] == "succeeded"
    worker = served.post("/workers/w1", json={"heartbeat_stats": {"cpu": 1}}).json()
    assert worker["heartbeat_stats"] == {"cpu": 1} and worker["last_heartbeat_time"] is not None
    assert served.post("/workers/w1").json()["heartbeat_stats"] == {"cpu": 1}
    assert served.get("/workers/w1").json()["worker_id"] == "w1"
    listed = served.get("/workers", params=[("status_in", "idle"), ("status_in", "busy"), ("status_in", "unknown")])
    assert [w["worker_id"] for w in listed.json()["items"]] == ["w1"]
    assert served.post("/workers/search", json={"worker_id_contains": "zz"}).json()["total"] == 0


def test_resources(served: httpx.Client) -> None:
    llm = {"resource_type": "llm", "endpoint": "http://x/v1", "model": "m"}
    response = served.post("/resources", json={"main": llm})
    assert response.status_code == 201
    created = response.json()
    rid = created["resources_id"]
    assert created["version"] == 1 and created["resources"]["main"]["model"] == "m"
    prompt = {"resource_type": "prompt_template", "template": "hi {name}", "engine": "f-string"}
    updated = served.post(f"/resources/{rid}", json={"p": prompt}).json()
    assert updated["version"] == 2 and set(updated["resources"]) == {"p"}
    assert served.get("/resources/latest").json()["resources_id"] == rid
    assert served.get(f"/resources/{rid}").json()["version"] == 2
    page = served.get("/resources", params={"resources_id_contains": rid[3:8]}).json()
    assert page["total"] == 1 and page["items"][0]["resources_id"] == rid


def test_spans_single_batch_and_query(served: httpx.Client) -> None:
    claimed = _claimed(served)
    rid, aid = claimed["rollout_id"], claimed["attempt"]["attempt_id"]
    assert served.post("/spans/next", json={"rollout_id": rid, "attempt_id": aid}).json() == {"sequence_id": 1}
    assert served.post("/spans/next", json={"rollout_id": rid, "attempt_id": aid}).json() == {"sequence_id": 2}
    ids = served.post("/spans/sequence_ids", json={"rollout_attempt_ids": [[rid, aid], [rid, aid]]}).json()
    assert ids == {"sequence_ids": [3, 4]}
    first = _span(rid, aid, 1, "0" * 15 + "1", custom_key="kept")
    response = served.post("/spans", json=first)
    assert response.status_code == 201 and response.json()["custom_key"] == "kept"
    assert served.post("/spans", json=first).json() is None  # duplicate
    batch = [_span(rid, aid, 2, "0" * 15 + "2", name="llm"), _span(rid, aid, 3, "0" * 15 + "3"), first]
    assert served.post("/spans/batch", json={"spans": batch}).json() == {"stored": [0, 1]}
    got = served.get("/spans", params={"rollout_id": rid, "attempt_id": "latest", "name_contains": "ll"}).json()
    assert [s["span_id"] for s in got["items"]] == ["0" * 15 + "2"]
    searched = served.post("/spans/search", json={"rollout_id": rid, "sort_order": "desc", "limit": 2}).json()
    assert searched["total"] == 3 and [s["sequence_id"] for s in searched["items"]] == [3, 2]
    assert served.get(f"/rollouts/{rid}/attempts/latest").json()["status"] == "running"


def test_wait_for_rollouts(served: httpx.Client) -> None:
    claimed = _claimed(served)
    rid = claimed["rollout_id"]
    assert served.post("/waits/rollouts", json={"rollout_ids": [rid, "ro-unknown"], "timeout": 0}).json() == []
    served.post(f"/rollouts/{rid}", json={"status": "cancelled"})
    done = served.post("/waits/rollouts", json={"rollout_ids": ["ro-unknown", rid], "timeout": 0.5}).json()
    assert [r["rollout_id"] for r in done] == [rid]


def test_idempotency_key_replays(served: httpx.Client) -> None:
    headers = {"Idempotency-Key": "k-1"}
    first = served.post("/queues/rollouts/enqueue", json={"rollouts": [{"input": 1}]}, headers=headers).json()
    again = served.post("/queues/rollouts/enqueue", json={"rollouts": [{"input": 1}]}, headers=headers).json()
    assert first == again
    assert served.get("/statistics").json()["total_rollouts"] == 1
    other = served.post(
        "/queues/rollouts/enqueue", json={"rollouts": [{"input": 1}]}, headers={"Idempotency-Key": "k-2"}
    )
    assert other.json() != first and served.get("/statistics").json()["total_rollouts"] == 2
    # the same key on another route is another request
    claimed = served.post("/queues/rollouts/dequeue", headers=headers).json()
    assert len(claimed) == 1
    assert served.post("/queues/rollouts/dequeue", headers=headers).json() == claimed


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error_type", "needle"),
    [
        ("POST", "/rollouts/ro-nope", {"status": "running"}, 404, "NotFoundError", "ro-nope"),
        ("POST", "/rollouts/ro-nope/attempts", {}, 404, "NotFoundError", "Rollout ro-nope not found"),
        ("POST", "/queues/rollouts/enqueue", {}, 400, "InvalidRequestError", "rollouts"),
        (
            "POST",
            "/queues/rollouts/enqueue",
            {"rollouts": [{"input": 1, "mode": "bogus"}]},
            400,
            "ValidationError",
            "mode",
        ),
        ("POST", "/queues/rollouts/dequeue", {"limit": "many"}, 400, "InvalidRequestError", "limit"),
        ("POST", "/rollouts/search", {"limit": -2}, 400, "InvalidRequestError", "imit"),
        ("POST", "/rollouts/search", {"sort_by": "nope"}, 400, "InvalidRequestError", "nope"),
        ("POST", "/rollouts/search", {"status_in": "queuing"}, 400, "InvalidRequestError", "status_in"),
        ("POST", "/rollouts/search", {"mode_in": ["train", 1]}, 400, "InvalidRequestError", "mode_in"),
        ("POST", "/spans", {"rollout_id": "r"}, 400, "ValidationError", "Span"),
        ("POST", "/spans/search", {}, 400, "InvalidRequestError", "rollout_id"),
        ("POST", "/resources", {"x": {"resource_type": "gpu"}}, 400, "ValidationError", "gpu"),
        ("POST", "/resources", [], 400, "InvalidRequestError", "object"),
        ("POST", "/waits/rollouts", {"rollout_ids": [1]}, 400, "InvalidRequestError", "rollout_ids"),
        ("GET", "/no/such/route", None, 404, "InvalidRequestError", "no route"),
        ("DELETE", "/rollouts", None, 405, "InvalidRequestError", "not allowed"),
    ],
)
def test_errors_name_the_problem(
    served: httpx.Client, method: str, path: str, body: Any, status: int, error_type: str, needle: str
) -> None:
    response = served.request(method, path, json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error_type"] == error_type and needle in payload["detail"]


def test_malformed_json_and_query(served: httpx.Client) -> None:
    response = served.post("/rollouts", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "malformed JSON" in response.json()["detail"]
    response = served.get("/rollouts", params={"limit": "ten"})
    assert response.status_code == 400 and "limit" in response.json()["detail"]
    response = served.get("/spans")
    assert response.status_code == 400 and "rollout_id" in response.json()["detail"]


def test_otlp_protobuf_json_and_gzip(served: httpx.Client) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

    claimed = _claimed(served)
    rid, aid = claimed["rollout_id"], claimed["attempt"]["attempt_id"]
    root = str(served.base_url).rsplit("/v1/agl", 1)[0]

    def kv(key: str, value: AnyValue) -> KeyValue:
        return KeyValue(key=key, value=value)

    resource_attrs = [kv("agentlightning.rollout_id", AnyValue(string_value=rid)),
                      kv("agentlightning.attempt_id", AnyValue(string_value=aid))]  # fmt: skip
    span = PbSpan(
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        name="pb-span",
        start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_001_000_000_000,
        attributes=[kv("n", AnyValue(int_value=7)), kv("b", AnyValue(bytes_value=b"\x01\x02"))],
    )
    orphan = PbSpan(trace_id=bytes(16), span_id=bytes([1] * 8), name="orphan")
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    request.resource_spans[0].resource.attributes.extend(resource_attrs)
    request.resource_spans.append(ResourceSpans(scope_spans=[ScopeSpans(spans=[orphan])]))
    response = httpx.post(
        root + "/v1/traces",
        content=gzip.compress(request.SerializeToString()),
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    parsed = ExportTraceServiceResponse.FromString(response.content)
    assert parsed.partial_success.rejected_spans == 1

    json_body = {
        "resourceSpans": [{
            "resource": {"attributes": []},
            "scopeSpans": [{"spans": [{
                "traceId": "0f" * 16, "spanId": "0e" * 8, "parentSpanId": "0102030405060708", "name": "json-span",
                "startTimeUnixNano": "1700000002000000000", "endTimeUnixNano": "1700000003000000000",
                "status": {"code": 2, "message": "boom"},
                "attributes": [
                    {"key": "agentlightning.rollout_id", "value": {"stringValue": rid}},
                    {"key": "agentlightning.attempt_id", "value": {"stringValue": aid}},
                    {"key": "agentlightning.span_sequence_id", "value": {"intValue": "50"}},
                    {"key": "list", "value": {"arrayValue": {"values": [{"boolValue": True}, {"doubleValue": 1.5}]}}},
                ],
            }]}],
        }]
    }  # fmt: skip
    response = httpx.post(root + "/v1/traces", json=json_body)
    assert response.status_code == 200 and response.json() == {}
    spans = served.post("/spans/search", json={"rollout_id": rid}).json()["items"]
    by_name = {s["name"]: s for s in spans}
    assert set(by_name) == {"pb-span", "json-span"}
    pb = by_name["pb-span"]
    assert pb["trace_id"] == bytes(range(16)).hex() and pb["span_id"] == bytes(range(8)).hex()
    assert pb["attributes"]["n"] == 7 and pb["attributes"]["b"] == "0102" and pb["sequence_id"] == 1
    assert pb["start_time"] == pytest.approx(1_700_000_000.0)
    js = by_name["json-span"]
    assert js["sequence_id"] == 50 and js["status"]["status_code"] == "ERROR" and js["parent_id"] == "0102030405060708"
    assert js["attributes"]["list"] == [True, 1.5]


def test_otlp_rejects_bad_bodies(served: httpx.Client) -> None:
    root = str(served.base_url).rsplit("/v1/agl", 1)[0]
    bad = [
        ({"Content-Type": "text/plain"}, b"hello", 415),
        ({"Content-Type": "application/x-protobuf"}, b"\xff\xff\xff", 400),
        ({"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, b"not gzip", 400),
        ({"Content-Type": "application/json"}, b"[1, 2]", 400),
        ({"Content-Type": "application/json"}, b'{"resourceSpans": 5}', 400),
        (
            {"Content-Type": "application/json"},
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "xyz"}]}]}]}',
            400,
        ),
        (
            {"Content-Type": "application/json"},
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": []}]}]}]}',
            400,
        ),
    ]
    for headers, content, status in bad:
        response = httpx.post(root + "/v1/traces", content=content, headers=headers)
        assert response.status_code == status, (headers, content, response.text)
        assert response.json()["detail"]
    empty = httpx.post(root + "/v1/traces", content=b"", headers={"Content-Type": "application/x-protobuf"})
    assert empty.status_code == 200


def test_router_refuses_a_fixed_route_shadowed_by_an_earlier_pattern() -> None:
    from agentlightning_server.app import _Router
    from agentlightning_server.routes import RouteSpec

    async def handler(call: Any) -> Any:
        return 200, None

    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    table = [(RouteSpec("GET", "/things/{thing_id}", handler), app), (RouteSpec("GET", "/things/latest", handler), app)]
    with pytest.raises(ValueError, match="shadowed"):
        _Router(app, table)
    _Router(app, table[::-1])  # fixed before pattern: fine


def test_route_specs_build_the_client_requests() -> None:
    from agentlightning.store.base import UNSET, LightningStore
    from agentlightning_server import routes

    assert routes.GET_WORKER.target("team/a b") == "/workers/team%2Fa%20b"
    assert routes.UPDATE_ATTEMPT.target("ro-1", "at-1") == "/rollouts/ro-1/attempts/at-1"
    with pytest.raises(TypeError, match="takes 2 ids, got 1"):
        routes.UPDATE_ATTEMPT.target("ro-1")
    with pytest.raises(TypeError, match="ids are strings"):
        routes.GET_ROLLOUT.target(7)  # type: ignore[arg-type]
    assert routes.UPDATE_ATTEMPT.request({"status": "running", "worker_id": UNSET, "metadata": None}) == {
        "status": "running",
        "metadata": None,
    }
    with pytest.raises(TypeError, match=r"no request field\(s\) \['colour'\]"):
        routes.UPDATE_ATTEMPT.request({"colour": "red"})
    for spec in routes.ROUTES:  # each route serves one store method (or the health check, or the rewards read)
        assert spec.name in ("health", "rollout_rewards") or callable(getattr(LightningStore, spec.name, None)), spec
        assert (spec.status == 201) == (spec.method == "POST" and spec.name.startswith(("add_", "start_", "enqueue")))


def test_span_writes_answer_as_the_converter_and_refuse_with_its_message(served: httpx.Client) -> None:
    from agentlightning.types.serialization import ValidationError, from_dict, to_dict
    from agentlightning.types.tracer import Span
    from agentlightning_server import wire

    claimed = _claimed(served)
    rid, aid = claimed["rollout_id"], claimed["attempt"]["attempt_id"]
    sent = _span(rid, aid, 1, "0" * 15 + "a", attributes={"n": 3, "list": [1, "x"]}, custom_key={"kept": [1]})
    sent["start_time"] = 3  # an integer for a float: the converter's fallback decides (3.0)
    response = served.post("/spans", json=sent)
    assert response.status_code == 201
    assert response.content == wire.dumps(to_dict(from_dict(sent, Span)))  # the bytes the converter would write
    for field, value in (("sequence_id", "1"), ("status", {"status_code": "BAD"}), ("events", [1])):
        bad = {**_span(rid, aid, 2, "0" * 15 + "b"), field: value}
        response = served.post("/spans", json=bad)
        with pytest.raises(ValidationError) as expected:
            from_dict(bad, Span)
        assert response.status_code == 400 and response.json()["detail"] == str(expected.value)


def test_span_encoding_equals_the_converters() -> None:
    import attrs
    from agentlightning.types.serialization import from_dict, to_dict
    from agentlightning.types.tracer import Span
    from agentlightning_server import wire

    span = from_dict(_span("r", "a", 1, "s", attributes={"t": (1, 2), "d": {"x": None}}, extra_key=1), Span)
    assert wire.encode_span(span) == wire.dumps(to_dict(span))
    assert wire.dumps(wire.span_dict(span)) == wire.dumps(to_dict(span))  # a tuple stays a tuple: the same JSON

    @attrs.define
    class Point:
        x: int

    odd = attrs.evolve(span, attributes={"p": Point(1)})  # only the converter turns this into JSON
    assert (
        wire.encode_span(odd)
        == wire.dumps(to_dict(odd))
        == wire.dumps({**to_dict(span), "attributes": {"p": {"x": 1}}})
    )
