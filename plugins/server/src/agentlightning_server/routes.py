"""The REST routes under ``/v1/agl``, in one table that both the server and the client are built from.

Each :class:`RouteSpec` says everything about one endpoint: method and path, the request fields it reads (the JSON
body, or the query string of a GET) with their checkers, its success status, the handler that answers it on the
server, and how the client decodes its answer. The server's dispatch (:mod:`.app`) and every call of
:class:`~agentlightning_server.client.LightningStoreClient` come from these specs, so a path, a method, an
idempotency flag or a field name is written once. The paths, bodies and statuses are upstream v0.3's, plus the
batched span routes.

Absent fields stay absent (the store's UNSET), explicit nulls are passed on, and the store decides what they mean, so
the remote store answers exactly as the local one.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union
from urllib.parse import quote

import anyio
import attrs
from agentlightning.store.base import UNSET, LightningStore
from agentlightning.types.core import (
    Attempt,
    AttemptedRollout,
    EnqueueRolloutRequest,
    PaginatedResult,
    Rollout,
    RolloutConfig,
    Worker,
)
from agentlightning.types.resources import ResourcesUpdate
from agentlightning.types.serialization import (
    from_dict,
    from_json_dict,
    resources_from_dict,
    rollout_from_dict,
    to_dict,
)
from agentlightning.types.tracer import Span

from .params import BadInput, K, Schema, read_json_args, read_query_args, require_object
from .wire import span_dict

__all__ = ["ROUTES", "Call", "RouteSpec"]


@attrs.define
class Call:
    """One request as a handler sees it: ``args`` holds the route's fields, read and checked."""

    store: LightningStore
    path: Mapping[str, str]
    body: Any
    args: Dict[str, Any] = attrs.field(factory=dict)
    max_wait_seconds: float = 60.0


Handler = Callable[[Call], Awaitable[Any]]
"""Server side: a request -> the JSON-ready answer (sent with the route's ``status``)."""

Decode = Callable[[Any], Any]
"""Client side: the decoded JSON answer -> what the client method returns."""


def _as_is(data: Any) -> Any:
    return data


@attrs.define(frozen=True)
class RouteSpec:
    method: str
    path: str
    """Relative to ``/v1/agl``; ``{name}`` matches one segment, ``{name:path}`` the rest of the path."""
    handler: Handler
    name: str = attrs.field(default="", kw_only=True)
    """What the route does, named after the store method it serves."""
    fields: Optional[Schema] = attrs.field(default=None, kw_only=True)
    """The request fields (JSON body; query string for GET) and their checkers. None: the body is one object (a span,
    resources) that the handler reads itself, or (GET) there are none."""
    required: Tuple[str, ...] = attrs.field(default=(), kw_only=True)
    status: int = attrs.field(default=200, kw_only=True)
    decode: Decode = attrs.field(default=_as_is, kw_only=True)
    keyed: bool = attrs.field(default=False, kw_only=True)
    """Non-idempotent: the client sends an ``Idempotency-Key`` and the server answers a repeat from its cache."""
    long_running: bool = attrs.field(default=False, kw_only=True)

    @property
    def has_body(self) -> bool:
        return self.method != "GET"

    def target(self, *ids: str) -> str:
        """The path with ``ids`` filled in, in order, each percent-encoded (ids may hold ``/`` or spaces)."""
        parts = self.path.split("{")
        out = parts[0]
        if len(ids) != len(parts) - 1:
            raise TypeError(f"{self.method} {self.path} takes {len(parts) - 1} ids, got {len(ids)}")
        for part, value in zip(parts[1:], ids, strict=True):
            if not isinstance(value, str):
                raise TypeError(f"ids are strings, got {type(value).__name__} {value!r}")
            out += quote(value, safe="") + part.split("}", 1)[1]
        return out

    def request(self, values: Mapping[str, Any]) -> Dict[str, Any]:
        """The request fields from ``values``: UNSET ones left out; a name the route does not read is an error."""
        unknown = set(values) - set(self.fields or ())
        if unknown:
            raise TypeError(f"{self.method} {self.path} has no request field(s) {sorted(unknown)}")
        return {k: v for k, v in values.items() if v is not UNSET}

    def read(self, body: Any, query: Any) -> Dict[str, Any]:
        """The request fields as the server receives them, checked (:class:`BadInput` names a bad one)."""
        if self.fields is None:
            return {}
        if not self.has_body:
            return read_query_args(query, self.fields, self.required)
        return read_json_args({} if body is None else body, self.fields, self.required)


# -- decoding on the client ----------------------------------------------------------------------------------------

Item = Union[Type[Any], Callable[[Any], Any]]


def _converter(item: Item) -> Callable[[Any], Any]:
    if isinstance(item, type):
        return lambda data: from_json_dict(data, item)
    return item


def _one(item: Item) -> Decode:
    return _converter(item)


def _maybe(item: Item) -> Decode:
    convert = _converter(item)
    return lambda data: None if data is None else convert(data)


def _many(item: Item) -> Decode:
    convert = _converter(item)
    return lambda data: [convert(d) for d in data]


def _paged(item: Item) -> Decode:
    convert = _converter(item)

    def decode(data: Any) -> PaginatedResult[Any]:
        items = [convert(i) for i in data["items"]]
        return PaginatedResult(items=items, limit=data["limit"], offset=data["offset"], total=data["total"])

    return decode


def _field(name: str) -> Decode:
    return lambda data: data[name]


# -- answering on the server ---------------------------------------------------------------------------------------


OFFLOAD_ITEMS = 256
"""Past this many records in one request or answer, converting them runs in a worker thread, not on the server's
event loop (which keeps answering other clients meanwhile)."""


def _records(items: Sequence[Any]) -> List[Any]:
    """``to_dict(items)``; spans through the generated encoder (:func:`~.wire.span_dict`)."""
    return [span_dict(i) for i in items] if items and type(items[0]) is Span else to_dict(list(items))


def _page(result: Any) -> Dict[str, Any]:
    if isinstance(result, PaginatedResult):
        return {"items": _records(result.items), "limit": result.limit, "offset": result.offset, "total": result.total}
    items = list(result)
    return {"items": _records(items), "limit": -1, "offset": 0, "total": len(items)}


async def _page_off_loop(result: Any) -> Dict[str, Any]:
    """:func:`_page`, in a worker thread for a large page."""
    if len(result) <= OFFLOAD_ITEMS:
        return _page(result)
    return await anyio.to_thread.run_sync(_page, result)


def _config(value: Any) -> Optional[RolloutConfig]:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadInput(f"config: expected an object, got {type(value).__name__}")
    return from_dict(value, RolloutConfig)


def _store_call(method: str, paged: bool = False) -> Handler:
    """The handler calling ``store.<method>(*path ids, **fields)`` and encoding its result."""

    async def handler(call: Call) -> Any:
        result = await getattr(call.store, method)(*call.path.values(), **call.args)
        return _page(result) if paged else to_dict(result)

    handler.__name__ = method
    return handler


# -- rollouts and the queue ------------------------------------------------------------------------------------------

_ROLLOUT_FIELDS: Schema = {
    "input": K.any,
    "mode": K.str_,
    "resources_id": K.str_,
    "config": K.any,
    "metadata": K.dict_,
}


async def start_rollout(call: Call) -> Any:
    args = call.args
    if "config" in args:
        args["config"] = _config(args["config"])
    return to_dict(await call.store.start_rollout(**args))


async def enqueue(call: Call) -> Any:
    requests: List[EnqueueRolloutRequest] = []
    for index, item in enumerate(call.args["rollouts"]):
        require_object(item, f"rollouts[{index}]")
        if "input" not in item:
            raise BadInput(f"rollouts[{index}].input: required field missing")
        requests.append(from_dict(item, EnqueueRolloutRequest))
    if not requests:
        return []
    if len(requests) == 1:
        r = requests[0]
        one = await call.store.enqueue_rollout(
            r.input, mode=r.mode, resources_id=r.resources_id, config=r.config, metadata=r.metadata
        )
        return [to_dict(one)]
    return to_dict(list(await call.store.enqueue_many_rollouts(requests)))


async def dequeue(call: Call) -> Any:
    limit = call.args.get("limit", 1)
    worker_id = call.args.get("worker_id")
    if limit <= 0:
        return []
    if limit == 1:
        one = await call.store.dequeue_rollout(worker_id=worker_id)
        return [] if one is None else [to_dict(one)]
    return to_dict(list(await call.store.dequeue_many_rollouts(limit=limit, worker_id=worker_id)))


_PAGE: Schema = {"limit": K.int, "offset": K.int, "sort_by": K.str_, "sort_order": K.str}
_ROLLOUT_QUERY: Schema = {
    "status_in": K.str_list_,
    "rollout_id_in": K.str_list_,
    "rollout_id_contains": K.str_,
    "mode_in": K.optional_str_list_,
    "start_time_from": K.float_,
    "filter_logic": K.str,
    "status": K.str_list_,
    "rollout_ids": K.str_list_,
    **_PAGE,
}


async def query_rollouts(call: Call) -> Any:
    args = call.args
    for alias, name in (("status", "status_in"), ("rollout_ids", "rollout_id_in")):  # deprecated aliases
        value = args.pop(alias, None)
        if value is not None and args.get(name) is None:
            args[name] = value
    return await _page_off_loop(await call.store.query_rollouts(**args))


async def update_rollout(call: Call) -> Any:
    args = call.args
    if "config" in args and args["config"] is not None:
        args["config"] = _config(args["config"])
    return to_dict(await call.store.update_rollout(call.path["rollout_id"], **args))


async def wait_rollouts(call: Call) -> Any:
    timeout = call.args.get("timeout")
    timeout = call.max_wait_seconds if timeout is None else min(timeout, call.max_wait_seconds)
    return to_dict(await call.store.wait_for_rollouts(rollout_ids=call.args["rollout_ids"], timeout=timeout))


# -- spans -----------------------------------------------------------------------------------------------------------


def _span(data: Any, what: str = "span") -> Span:
    require_object(data, what)
    return from_json_dict(data, Span)


async def add_span(call: Call) -> Any:
    stored = await call.store.add_span(_span(call.body))
    return None if stored is None else span_dict(stored)


async def add_spans(call: Call) -> Any:
    """``{"spans": [...]}`` -> ``{"stored": [indexes of the spans stored]}`` (duplicates left out): the client
    already holds the spans, so they do not travel back."""
    items = call.args["spans"]

    def convert() -> List[Span]:
        return [_span(item, f"spans[{i}]") for i, item in enumerate(items)]

    spans = convert() if len(items) <= OFFLOAD_ITEMS else await anyio.to_thread.run_sync(convert)
    if not spans:
        return {"stored": []}
    stored = await call.store.add_many_spans(spans)
    index = {(s.rollout_id, s.attempt_id, s.span_id): i for i, s in enumerate(spans)}
    return {"stored": [index[(s.rollout_id, s.attempt_id, s.span_id)] for s in stored]}


async def add_span_sequenced(call: Call) -> Any:
    """A span stored under the next sequence id of its rollout (``add_otel_span`` without one): one request instead
    of ``/spans/next`` then ``/spans``. Answers ``{"sequence_id": n}`` (the client holds the span), or null for a
    duplicate."""
    span = _span(call.body)
    add = getattr(call.store, "add_span_with_next_sequence_id", None)
    if add is not None:  # one transaction
        stored = await add(span)
    else:
        span.sequence_id = await call.store.get_next_span_sequence_id(span.rollout_id, span.attempt_id)
        stored = await call.store.add_span(span)
    return None if stored is None else {"sequence_id": stored.sequence_id}


async def next_sequence_id(call: Call) -> Any:
    return {"sequence_id": await call.store.get_next_span_sequence_id(call.args["rollout_id"], call.args["attempt_id"])}


async def many_sequence_ids(call: Call) -> Any:
    pairs: List[Tuple[str, str]] = []
    for i, pair in enumerate(call.args["rollout_attempt_ids"]):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise BadInput(f"rollout_attempt_ids[{i}]: expected [rollout_id, attempt_id], got {pair!r}")
        pairs.append((pair[0], pair[1]))
    ids = await call.store.get_many_span_sequence_ids(pairs) if pairs else []
    return {"sequence_ids": list(ids)}


_SPAN_QUERY: Schema = {
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


async def query_spans(call: Call) -> Any:
    args = call.args
    return await _page_off_loop(await call.store.query_spans(args.pop("rollout_id"), **args))


MAX_REWARD_ROLLOUTS = 200
"""Rollouts one ``GET /rollouts/rewards`` answers at most (the dashboard's rewards window)."""
REWARD_SPANS = 50
"""Reward spans read per rollout (as a ``query_spans`` page would)."""


async def rollout_rewards(call: Call) -> Any:
    """``{"rewards": [{"rollout_id", "reward"}, ...]}`` in the order asked (repeats once): each rollout's final reward,
    read from its reward spans as ``find_final_reward`` reads them; null when it has none (or its spans are evicted).
    One bounded request for what would be one span query per rollout."""
    from agentlightning.emitter.reward import find_final_reward
    from agentlightning.semconv import AGL_ANNOTATION, AGL_REWARD
    from agentlightning.store.errors import SpansEvictedError

    ids = list(dict.fromkeys(call.args["rollout_id_in"]))
    if len(ids) > MAX_REWARD_ROLLOUTS:
        raise BadInput(f"rollout_id_in: at most {MAX_REWARD_ROLLOUTS} rollouts per request, got {len(ids)}")
    rewards: List[Dict[str, Any]] = []
    for rollout_id in ids:
        try:
            spans = await call.store.query_spans(
                rollout_id, name=AGL_ANNOTATION, name_contains=AGL_REWARD, filter_logic="or", limit=REWARD_SPANS
            )
            reward = find_final_reward(list(spans))
        except SpansEvictedError:
            reward = None
        rewards.append({"rollout_id": rollout_id, "reward": reward})
    return {"rewards": rewards}


# -- resources -------------------------------------------------------------------------------------------------------


async def add_resources(call: Call) -> Any:
    return to_dict(await call.store.add_resources(resources_from_dict(require_object(call.body))))


async def update_resources(call: Call) -> Any:
    resources = resources_from_dict(require_object(call.body))
    return to_dict(await call.store.update_resources(call.path["resources_id"], resources))


# -- the rest --------------------------------------------------------------------------------------------------------


async def statistics(call: Call) -> Any:
    return dict(await call.store.statistics())


async def health(call: Call) -> Any:
    return {"status": "ok"}


def _get(path: str, handler: Handler, **options: Any) -> RouteSpec:
    return RouteSpec("GET", path, handler, **options)


def _post(path: str, handler: Handler, **options: Any) -> RouteSpec:
    return RouteSpec("POST", path, handler, **options)


def _queries(
    path: str,
    method: str,
    fields: Schema,
    decode: Decode,
    handler: Optional[Handler] = None,
    required: Tuple[str, ...] = (),
) -> Tuple[RouteSpec, RouteSpec]:
    """``GET path`` (query string) and ``POST path/search`` (JSON body): one query, two spellings."""
    handler = handler or _store_call(method, paged=True)
    return (
        _get(path, handler, name=method, fields=fields, required=required, decode=decode),
        _post(path + "/search", handler, name=method, fields=fields, required=required, decode=decode),
    )


_rollout_page = _paged(rollout_from_dict)
QUERY_ROLLOUTS, SEARCH_ROLLOUTS = _queries("/rollouts", "query_rollouts", _ROLLOUT_QUERY, _rollout_page, query_rollouts)
QUERY_ATTEMPTS, SEARCH_ATTEMPTS = _queries("/rollouts/{rollout_id}/attempts", "query_attempts", _PAGE, _paged(Attempt))
_WORKER_QUERY: Schema = {"status_in": K.str_list_, "worker_id_contains": K.str_, "filter_logic": K.str, **_PAGE}
QUERY_WORKERS, SEARCH_WORKERS = _queries("/workers", "query_workers", _WORKER_QUERY, _paged(Worker))
QUERY_SPANS, SEARCH_SPANS = _queries(
    "/spans", "query_spans", _SPAN_QUERY, _paged(Span), query_spans, required=("rollout_id",)
)
_RESOURCES_QUERY: Schema = {"resources_id": K.str_, "resources_id_contains": K.str_, **_PAGE}
QUERY_RESOURCES = _get(
    "/resources", _store_call("query_resources", paged=True), name="query_resources", fields=_RESOURCES_QUERY,
    decode=_paged(ResourcesUpdate),
)  # fmt: skip

HEALTH = _get("/health", health, name="health")
STATISTICS = _get("/statistics", statistics, name="statistics")
ENQUEUE = _post(
    "/queues/rollouts/enqueue", enqueue, name="enqueue_many_rollouts", fields={"rollouts": K.list},
    required=("rollouts",), status=201, decode=_many(Rollout), keyed=True,
)  # fmt: skip
DEQUEUE = _post(
    "/queues/rollouts/dequeue", dequeue, name="dequeue_many_rollouts", fields={"limit": K.int, "worker_id": K.str_},
    decode=_many(AttemptedRollout), keyed=True,
)  # fmt: skip
START_ROLLOUT = _post(
    "/rollouts", start_rollout, name="start_rollout", fields={**_ROLLOUT_FIELDS, "worker_id": K.str_},
    required=("input",), status=201, decode=_one(AttemptedRollout), keyed=True,
)  # fmt: skip
ROLLOUT_REWARDS = _get(
    "/rollouts/rewards", rollout_rewards, name="rollout_rewards", fields={"rollout_id_in": K.str_list},
    required=("rollout_id_in",), decode=_field("rewards"),
)  # fmt: skip
GET_ROLLOUT = _get("/rollouts/{rollout_id}", _store_call("get_rollout_by_id"), name="get_rollout_by_id",
                   decode=_maybe(rollout_from_dict))  # fmt: skip
UPDATE_ROLLOUT = _post(
    "/rollouts/{rollout_id}", update_rollout, name="update_rollout", fields={**_ROLLOUT_FIELDS, "status": K.any},
    decode=_one(Rollout),
)  # fmt: skip
START_ATTEMPT = _post(
    "/rollouts/{rollout_id}/attempts", _store_call("start_attempt"), name="start_attempt",
    fields={"worker_id": K.str_}, status=201, decode=_one(AttemptedRollout), keyed=True,
)  # fmt: skip
LATEST_ATTEMPT = _get("/rollouts/{rollout_id}/attempts/latest", _store_call("get_latest_attempt"),
                      name="get_latest_attempt", decode=_maybe(Attempt))  # fmt: skip
UPDATE_ATTEMPT = _post(
    "/rollouts/{rollout_id}/attempts/{attempt_id}", _store_call("update_attempt"), name="update_attempt",
    fields={"status": K.any, "worker_id": K.str_, "last_heartbeat_time": K.float_, "metadata": K.dict_},
    decode=_one(Attempt),
)  # fmt: skip
GET_WORKER = _get("/workers/{worker_id:path}", _store_call("get_worker_by_id"), name="get_worker_by_id",
                  decode=_maybe(Worker))  # fmt: skip
UPDATE_WORKER = _post("/workers/{worker_id:path}", _store_call("update_worker"), name="update_worker",
                      fields={"heartbeat_stats": K.any}, decode=_one(Worker))  # fmt: skip
ADD_RESOURCES = _post("/resources", add_resources, name="add_resources", status=201, decode=_one(ResourcesUpdate),
                      keyed=True)  # fmt: skip
LATEST_RESOURCES = _get("/resources/latest", _store_call("get_latest_resources"), name="get_latest_resources",
                        decode=_maybe(ResourcesUpdate))  # fmt: skip
UPDATE_RESOURCES = _post("/resources/{resources_id:path}", update_resources, name="update_resources",
                         decode=_one(ResourcesUpdate))  # fmt: skip
GET_RESOURCES = _get("/resources/{resources_id:path}", _store_call("get_resources_by_id"), name="get_resources_by_id",
                     decode=_maybe(ResourcesUpdate))  # fmt: skip
ADD_SPAN = _post("/spans", add_span, name="add_span", status=201, decode=_maybe(Span))
ADD_SPANS = _post("/spans/batch", add_spans, name="add_many_spans", fields={"spans": K.list}, required=("spans",),
                  status=201, decode=_field("stored"))  # fmt: skip
ADD_SPAN_SEQUENCED = _post("/spans/sequenced", add_span_sequenced, name="add_otel_span", status=201, keyed=True)
NEXT_SEQUENCE_ID = _post(
    "/spans/next", next_sequence_id, name="get_next_span_sequence_id",
    fields={"rollout_id": K.str, "attempt_id": K.str}, required=("rollout_id", "attempt_id"),
    decode=_field("sequence_id"), keyed=True,
)  # fmt: skip
SEQUENCE_IDS = _post(
    "/spans/sequence_ids", many_sequence_ids, name="get_many_span_sequence_ids",
    fields={"rollout_attempt_ids": K.list}, required=("rollout_attempt_ids",), decode=_field("sequence_ids"),
    keyed=True,
)  # fmt: skip
WAIT_ROLLOUTS = _post(
    "/waits/rollouts", wait_rollouts, name="wait_for_rollouts", fields={"rollout_ids": K.str_list, "timeout": K.float_},
    required=("rollout_ids",), decode=_many(Rollout), long_running=True,
)  # fmt: skip

ROUTES: Tuple[RouteSpec, ...] = (
    HEALTH,
    STATISTICS,
    ENQUEUE,
    DEQUEUE,
    START_ROLLOUT,
    QUERY_ROLLOUTS,
    SEARCH_ROLLOUTS,
    ROLLOUT_REWARDS,
    GET_ROLLOUT,
    UPDATE_ROLLOUT,
    START_ATTEMPT,
    QUERY_ATTEMPTS,
    SEARCH_ATTEMPTS,
    LATEST_ATTEMPT,
    UPDATE_ATTEMPT,
    QUERY_WORKERS,
    SEARCH_WORKERS,
    GET_WORKER,
    UPDATE_WORKER,
    QUERY_RESOURCES,
    ADD_RESOURCES,
    LATEST_RESOURCES,
    UPDATE_RESOURCES,
    GET_RESOURCES,
    ADD_SPAN,
    ADD_SPANS,
    ADD_SPAN_SEQUENCED,
    QUERY_SPANS,
    SEARCH_SPANS,
    NEXT_SEQUENCE_ID,
    SEQUENCE_IDS,
    WAIT_ROLLOUTS,
)
"""Order matters: fixed segments (``search``, ``latest``) come before the ``{id}`` routes they would match. Worker
and resources ids are chosen by users and may hold ``/``, so those final segments match the rest of the path."""
