"""The client against a server without the span batch route (upstream v0.3's): one POST per span instead."""

from __future__ import annotations

from typing import Any, List, Tuple

import anyio
from agentlightning.testing.store_suite import make_span
from agentlightning_server import LightningStoreClient, LightningStoreServer
from agentlightning_server.app import create_app

NOT_FOUND = b'{"detail":"Not Found"}'  # what upstream's FastAPI server answers for a route it does not have


def without_batch_route(inner: Any, seen: List[Tuple[str, str]]) -> Any:
    """Our server's app, answering POST .../spans/batch as upstream's server does (404, no error type)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append((scope["method"], scope["path"]))
            if scope["path"].endswith("/spans/batch"):
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(NOT_FOUND)).encode())]
                await send({"type": "http.response.start", "status": 404, "headers": headers})
                await send({"type": "http.response.body", "body": NOT_FOUND})
                return
        await inner(scope, receive, send)

    return app


def test_add_many_spans_falls_back_to_one_post_per_span() -> None:
    from agentlightning_memory import InMemoryLightningStore

    seen: List[Tuple[str, str]] = []
    store = InMemoryLightningStore(watchdog_interval=None)
    app = without_batch_route(create_app(store), seen)
    with LightningStoreServer(store, port=0, app=app) as server:

        async def work() -> None:
            client = LightningStoreClient(server.endpoint, retry_delays=())
            try:
                claimed = await client.start_rollout({"q": 1})
                rid, aid = claimed.rollout_id, claimed.attempt.attempt_id
                first = [make_span(rid, aid, i, name=f"s{i}") for i in (1, 2, 3)]
                stored = await client.add_many_spans(first)
                assert [s.name for s in stored] == ["s1", "s2", "s3"]
                duplicate_and_new = [first[0], make_span(rid, aid, 4, name="s4")]
                assert [s.name for s in await client.add_many_spans(duplicate_and_new)] == ["s4"]
                spans = await client.query_spans(rid)
                assert sorted(s.name for s in spans) == ["s1", "s2", "s3", "s4"]
            finally:
                await client.close()

        anyio.run(work)
    batch = [p for m, p in seen if p.endswith("/spans/batch")]
    singles = [p for m, p in seen if m == "POST" and p.endswith("/spans")]
    assert len(batch) == 1  # asked once; the client then remembers this server has no batch route
    assert len(singles) == 5  # 3 spans, then the duplicate and the new one


def test_a_missing_rollout_is_still_an_error_not_a_missing_route() -> None:
    import pytest
    from agentlightning.store.errors import NotFoundError
    from agentlightning_memory import InMemoryLightningStore

    store = InMemoryLightningStore(watchdog_interval=None)
    with LightningStoreServer(store, port=0) as server:

        async def work() -> None:
            client = LightningStoreClient(server.endpoint, retry_delays=())
            try:
                with pytest.raises((NotFoundError, ValueError)):
                    await client.add_many_spans([make_span("ro-missing", "at-missing", 1)])
                assert client._no_batch_spans is False
            finally:
                await client.close()

        anyio.run(work)
