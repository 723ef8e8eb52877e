"""A client over several store server URLs: parsing, spreading requests, failing over from a dead server."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, List

import anyio
import pytest
from agentlightning_server import LightningStoreClient
from agentlightning_server.client import split_urls
from agentlightning_server.serve import free_port
from agentlightning_server.testing import StoreHost


def test_urls_as_a_list_or_a_comma_separated_string() -> None:
    assert split_urls("http://a:1, http://b:2/") == ("http://a:1", "http://b:2")
    assert split_urls(["http://a:1", "https://b"]) == ("http://a:1", "https://b")
    client = LightningStoreClient("http://a:1,http://b:2")
    assert client.urls == ("http://a:1", "http://b:2") and client.url == "http://a:1"
    assert pickle.loads(pickle.dumps(client)).urls == client.urls  # runner processes get every server
    assert "http://b:2" in repr(client)
    with pytest.raises(ValueError, match="http:// or https://"):
        LightningStoreClient("http://a:1,b:2")
    with pytest.raises(ValueError, match="at least one"):
        LightningStoreClient(" , ")


def test_requests_spread_over_servers_and_skip_a_dead_one(store_host: StoreHost, tmp_path: Path) -> None:
    """Two servers over one SQLite file and one URL where nothing listens: every call succeeds, both live servers
    take requests, and the dead one is passed over rather than waited for."""
    from agentlightning_sqlite import SqliteLightningStore

    db = tmp_path / "run.db"
    served = [store_host.add(lambda: SqliteLightningStore(str(db), watchdog_interval=None)) for _ in range(2)]
    dead = f"http://127.0.0.1:{free_port()}"
    hits: List[int] = [0, 0]

    async def run() -> None:
        client = LightningStoreClient([dead, served[0][1], served[1][1]], unavailable_seconds=5)
        original = client._http

        def counting(server: int = 0) -> Any:
            if server:
                hits[server - 1] += 1
            return original(server)

        client._http = counting  # type: ignore[method-assign]
        try:
            ids = [(await client.enqueue_rollout({"n": n})).rollout_id for n in range(20)]
            claimed = [await client.dequeue_rollout() for _ in range(20)]
            assert sorted(c.rollout_id for c in claimed if c is not None) == sorted(ids)
            assert (await client.query_rollouts()).total == 20
        finally:
            await client.close()

    anyio.run(run)  # a client without failover would wait for the dead server, then raise StoreUnavailableError
    assert all(count >= 5 for count in hits), hits
    for key, _ in served:
        store_host.drop(key)


def test_otlp_export_goes_to_the_next_server_when_one_is_dead(store_host: StoreHost, tmp_path: Path) -> None:
    """``export_otlp`` over a dead URL and two live servers of one SQLite file: every export is stored once, and
    both live servers take some."""
    from agentlightning.testing.store_suite import make_span
    from agentlightning.utils.otlp import export_request
    from agentlightning_sqlite import SqliteLightningStore

    db = tmp_path / "run.db"
    served = [store_host.add(lambda: SqliteLightningStore(str(db), watchdog_interval=None)) for _ in range(2)]
    dead = f"http://127.0.0.1:{free_port()}"
    hits: List[int] = [0, 0]

    async def run() -> None:
        client = LightningStoreClient([dead, served[0][1], served[1][1]], unavailable_seconds=5)
        original = client._http

        def counting(server: int = 0) -> Any:
            if server:
                hits[server - 1] += 1
            return original(server)

        client._http = counting  # type: ignore[method-assign]
        try:
            started = await client.start_rollout(input=1)
            rid, aid = started.rollout_id, started.attempt.attempt_id
            ids = {"agentlightning.rollout_id": rid, "agentlightning.attempt_id": aid}
            for n in range(10):
                body = export_request([(ids, [make_span(rid, aid, 0, name=f"s{n}")])]).SerializeToString()
                await client.export_otlp(body)
            spans = await client.query_spans(rid)
            assert sorted(s.name for s in spans) == sorted(f"s{n}" for n in range(10))
            assert sorted(s.sequence_id for s in spans) == list(range(1, 11))
        finally:
            await client.close()

    anyio.run(run)
    assert all(count >= 3 for count in hits), hits
    for key, _ in served:
        store_host.drop(key)
