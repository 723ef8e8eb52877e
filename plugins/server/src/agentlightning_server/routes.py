"""The REST routes under ``/v1/agl``: upstream v0.3's paths, methods and payloads, plus batched span routes.

Each handler takes a :class:`Call` (the store, the path parameters, the parsed body and query) and returns
``(status, JSON-ready data)``. Absent fields stay absent (the store's UNSET), explicit nulls are passed on, and the
store decides what they mean, so the remote store answers exactly as the local one.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Tuple

import attrs
from agentlightning.store.base import LightningStore
from agentlightning.types.core import EnqueueRolloutRequest, PaginatedResult, RolloutConfig
from agentlightning.types.serialization import from_dict, resources_from_dict, to_dict
from agentlightning.types.tracer import Span

from .params import BadInput, K, read_json_args, read_query_args, require_object

Result = Tuple[int, Any]


@attrs.define
class Call:
    store: LightningStore
    path: Mapping[str, str]
    body: Any
    query: Any
    max_wait_seconds: float = 60.0


Handler = Callable[[Call], Awaitable[Result]]


@attrs.define(frozen=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    keyed: bool = False
    """Non-idempotent: honour ``Idempotency-Key``."""
    has_body: bool = True
    long_running: bool = False


def _page(result: Any) -> Dict[str, Any]:
    if isinstance(result, PaginatedResult):
        page: Dict[str, Any] = to_dict(result)
        return page
    items = list(result)
    return {"items": to_dict(items), "limit": -1, "offset": 0, "total": len(items)}


def _config(value: Any) -> Optional[RolloutConfig]:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadInput(f"config: expected an object, got {type(value).__name__}")
    return from_dict(value, RolloutConfig)


def _args(call: Call, schema: Mapping[str, Any], required: Tuple[str, ...] = ()) -> Dict[str, Any]:
    if call.query is not None:
        return read_query_args(call.query, schema, required)
    return read_json_args(call.body if call.body is not None else {}, schema, required)


# -- rollouts and the queue ------------------------------------------------------------------------------------------

_ROLLOUT_FIELDS = {"input": K.any, "mode": K.str_, "resources_id": K.str_, "config": K.any, "metadata": K.dict_}


async def start_rollout(call: Call) -> Result:
    args = read_json_args(call.body, {**_ROLLOUT_FIELDS, "worker_id": K.str_}, required=("input",))
    if "config" in args:
        args["config"] = _config(args["config"])
    return 201, to_dict(await call.store.start_rollout(**args))


async def enqueue(call: Call) -> Result:
    data = read_json_args(call.body, {"rollouts": K.list}, required=("rollouts",))
    requests: List[EnqueueRolloutRequest] = []
    for index, item in enumerate(data["rollouts"]):
        require_object(item, f"rollouts[{index}]")
        if "input" not in item:
            raise BadInput(f"rollouts[{index}].input: required field missing")
        requests.append(from_dict(item, EnqueueRolloutRequest))
    if not requests:
        return 201, []
    if len(requests) == 1:
        r = requests[0]
        one = await call.store.enqueue_rollout(
            r.input, mode=r.mode, resources_id=r.resources_id, config=r.config, metadata=r.metadata
        )
        return 201, [to_dict(one)]
    return 201, to_dict(list(await call.store.enqueue_many_rollouts(requests)))


async def dequeue(call: Call) -> Result:
    args = read_json_args(call.body if call.body is not None else {}, {"limit": K.int, "worker_id": K.str_})
    limit = args.get("limit", 1)
    worker_id = args.get("worker_id")
    if limit <= 0:
        return 200, []
    if limit == 1:
        one = await call.store.dequeue_rollout(worker_id=worker_id)
        return 200, [] if one is None else [to_dict(one)]
    return 200, to_dict(list(await call.store.dequeue_many_rollouts(limit=limit, worker_id=worker_id)))


_PAGE = {"limit": K.int, "offset": K.int, "sort_by": K.str_, "sort_order": K.str}
_ROLLOUT_QUERY = {
    "status_in": K.str_list_,
    "rollout_id_in": K.str_list_,
    "rollout_id_contains": K.str_,
    "filter_logic": K.str,
    "status": K.str_list_,
    "rollout_ids": K.str_list_,
    **_PAGE,
}


async def query_rollouts(call: Call) -> Result:
    args = _args(call, _ROLLOUT_QUERY)
    for alias, name in (("status", "status_in"), ("rollout_ids", "rollout_id_in")):  # deprecated aliases
        value = args.pop(alias, None)
        if value is not None and args.get(name) is None:
            args[name] = value
    return 200, _page(await call.store.query_rollouts(**args))


async def get_rollout(call: Call) -> Result:
    return 200, to_dict(await call.store.get_rollout_by_id(call.path["rollout_id"]))


async def update_rollout(call: Call) -> Result:
    args = read_json_args(call.body if call.body is not None else {}, {**_ROLLOUT_FIELDS, "status": K.any})
    if "config" in args and args["config"] is not None:
        args["config"] = _config(args["config"])
    return 200, to_dict(await call.store.update_rollout(call.path["rollout_id"], **args))


async def wait_rollouts(call: Call) -> Result:
    args = read_json_args(call.body, {"rollout_ids": K.str_list, "timeout": K.float_}, required=("rollout_ids",))
    timeout = args.get("timeout")
    timeout = call.max_wait_seconds if timeout is None else min(timeout, call.max_wait_seconds)
    return 200, to_dict(await call.store.wait_for_rollouts(rollout_ids=args["rollout_ids"], timeout=timeout))


# -- attempts --------------------------------------------------------------------------------------------------------


async def start_attempt(call: Call) -> Result:
    args = read_json_args(call.body if call.body is not None else {}, {"worker_id": K.str_})
    return 201, to_dict(await call.store.start_attempt(call.path["rollout_id"], **args))


async def query_attempts(call: Call) -> Result:
    return 200, _page(await call.store.query_attempts(call.path["rollout_id"], **_args(call, _PAGE)))


async def latest_attempt(call: Call) -> Result:
    return 200, to_dict(await call.store.get_latest_attempt(call.path["rollout_id"]))


async def update_attempt(call: Call) -> Result:
    schema = {"status": K.any, "worker_id": K.str_, "last_heartbeat_time": K.float_, "metadata": K.dict_}
    args = read_json_args(call.body if call.body is not None else {}, schema)
    attempt = await call.store.update_attempt(call.path["rollout_id"], call.path["attempt_id"], **args)
    return 200, to_dict(attempt)


# -- spans -----------------------------------------------------------------------------------------------------------


def _span(data: Any, what: str = "span") -> Span:
    require_object(data, what)
    return from_dict(data, Span)


async def add_span(call: Call) -> Result:
    return 201, to_dict(await call.store.add_span(_span(call.body)))


async def add_spans(call: Call) -> Result:
    """``{"spans": [...]}`` -> ``{"stored": [indexes of the spans stored]}`` (duplicates left out): the client
    already holds the spans, so they do not travel back."""
    data = read_json_args(call.body, {"spans": K.list}, required=("spans",))
    spans = [_span(item, f"spans[{i}]") for i, item in enumerate(data["spans"])]
    if not spans:
        return 201, {"stored": []}
    stored = await call.store.add_many_spans(spans)
    index = {(s.rollout_id, s.attempt_id, s.span_id): i for i, s in enumerate(spans)}
    return 201, {"stored": [index[(s.rollout_id, s.attempt_id, s.span_id)] for s in stored]}


async def next_sequence_id(call: Call) -> Result:
    args = read_json_args(call.body, {"rollout_id": K.str, "attempt_id": K.str}, required=("rollout_id", "attempt_id"))
    return 200, {"sequence_id": await call.store.get_next_span_sequence_id(args["rollout_id"], args["attempt_id"])}


async def many_sequence_ids(call: Call) -> Result:
    data = read_json_args(call.body, {"rollout_attempt_ids": K.list}, required=("rollout_attempt_ids",))
    pairs: List[Tuple[str, str]] = []
    for i, pair in enumerate(data["rollout_attempt_ids"]):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise BadInput(f"rollout_attempt_ids[{i}]: expected [rollout_id, attempt_id], got {pair!r}")
        pairs.append((pair[0], pair[1]))
    ids = await call.store.get_many_span_sequence_ids(pairs) if pairs else []
    return 200, {"sequence_ids": list(ids)}


_SPAN_QUERY = {
    "rollout_id": K.str,
    "attempt_id": K.str_,
    **{
        f"{field}{suffix}": K.str_
        for field in ("trace_id", "span_id", "parent_id", "name")
        for suffix in ("", "_contains")
    },
    "filter_logic": K.str,
    **_PAGE,
}


async def query_spans(call: Call) -> Result:
    args = _args(call, _SPAN_QUERY, required=("rollout_id",))
    return 200, _page(await call.store.query_spans(args.pop("rollout_id"), **args))


# -- resources -------------------------------------------------------------------------------------------------------


async def add_resources(call: Call) -> Result:
    return 201, to_dict(await call.store.add_resources(resources_from_dict(require_object(call.body))))


async def update_resources(call: Call) -> Result:
    resources = resources_from_dict(require_object(call.body))
    return 200, to_dict(await call.store.update_resources(call.path["resources_id"], resources))


async def get_resources(call: Call) -> Result:
    return 200, to_dict(await call.store.get_resources_by_id(call.path["resources_id"]))


async def latest_resources(call: Call) -> Result:
    return 200, to_dict(await call.store.get_latest_resources())


async def query_resources(call: Call) -> Result:
    schema = {"resources_id": K.str_, "resources_id_contains": K.str_, **_PAGE}
    return 200, _page(await call.store.query_resources(**_args(call, schema)))


# -- workers and the rest --------------------------------------------------------------------------------------------

_WORKER_QUERY = {"status_in": K.str_list_, "worker_id_contains": K.str_, "filter_logic": K.str, **_PAGE}


async def query_workers(call: Call) -> Result:
    return 200, _page(await call.store.query_workers(**_args(call, _WORKER_QUERY)))


async def get_worker(call: Call) -> Result:
    return 200, to_dict(await call.store.get_worker_by_id(call.path["worker_id"]))


async def update_worker(call: Call) -> Result:
    args = read_json_args(call.body if call.body is not None else {}, {"heartbeat_stats": K.any})
    return 200, to_dict(await call.store.update_worker(call.path["worker_id"], **args))


async def statistics(call: Call) -> Result:
    return 200, dict(await call.store.statistics())


async def health(call: Call) -> Result:
    return 200, {"status": "ok"}


def _get(path: str, handler: Handler) -> RouteSpec:
    return RouteSpec("GET", path, handler, has_body=False)


def _post(path: str, handler: Handler, *, keyed: bool = False, long_running: bool = False) -> RouteSpec:
    return RouteSpec("POST", path, handler, keyed=keyed, long_running=long_running)


ROUTES: Tuple[RouteSpec, ...] = (
    _get("/health", health),
    _get("/statistics", statistics),
    _post("/queues/rollouts/enqueue", enqueue, keyed=True),
    _post("/queues/rollouts/dequeue", dequeue, keyed=True),
    _post("/rollouts", start_rollout, keyed=True),
    _get("/rollouts", query_rollouts),
    _post("/rollouts/search", query_rollouts),
    _get("/rollouts/{rollout_id}", get_rollout),
    _post("/rollouts/{rollout_id}", update_rollout),
    _post("/rollouts/{rollout_id}/attempts", start_attempt, keyed=True),
    _get("/rollouts/{rollout_id}/attempts", query_attempts),
    _post("/rollouts/{rollout_id}/attempts/search", query_attempts),
    _get("/rollouts/{rollout_id}/attempts/latest", latest_attempt),
    _post("/rollouts/{rollout_id}/attempts/{attempt_id}", update_attempt),
    _get("/workers", query_workers),
    _post("/workers/search", query_workers),
    _get("/workers/{worker_id:path}", get_worker),
    _post("/workers/{worker_id:path}", update_worker),
    _get("/resources", query_resources),
    _post("/resources", add_resources, keyed=True),
    _get("/resources/latest", latest_resources),
    _post("/resources/{resources_id:path}", update_resources),
    _get("/resources/{resources_id:path}", get_resources),
    _post("/spans", add_span),
    _post("/spans/batch", add_spans),
    _get("/spans", query_spans),
    _post("/spans/search", query_spans),
    _post("/spans/next", next_sequence_id, keyed=True),
    _post("/spans/sequence_ids", many_sequence_ids, keyed=True),
    _post("/waits/rollouts", wait_rollouts, long_running=True),
)
"""Order matters: fixed segments (``search``, ``latest``) come before the ``{id}`` routes they would match. Worker
and resources ids are chosen by users and may hold ``/``, so those final segments match the rest of the path."""
