"""The per-request timeout scope and event, on asyncio (native primitives) and trio (anyio's)."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from agentlightning_memory import InMemoryLightningStore
from agentlightning_server.aio import new_event, time_limit
from agentlightning_server.app import ServerSettings, create_app


@pytest.mark.anyio
async def test_time_limit_raises_timeout_error_when_the_body_overruns() -> None:
    with pytest.raises(TimeoutError):
        async with time_limit(0.02):
            await anyio.sleep(5)


@pytest.mark.anyio
async def test_time_limit_lets_a_quick_body_finish_and_its_errors_through() -> None:
    async with time_limit(5):
        await anyio.lowlevel.checkpoint()
    with pytest.raises(KeyError):
        async with time_limit(5):
            raise KeyError("x")
    await anyio.sleep(0.05)  # a finished scope cancels nothing later


@pytest.mark.anyio
async def test_new_event_wakes_its_waiters() -> None:
    event = new_event()
    woken = []

    async def waiter() -> None:
        await event.wait()
        woken.append(1)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        tg.start_soon(waiter)
        await anyio.sleep(0.01)
        assert not woken
        event.set()
    assert woken == [1, 1]


class _SlowStore(InMemoryLightningStore):
    async def get_latest_resources(self) -> Any:
        await anyio.sleep(5)


@pytest.mark.anyio
async def test_a_store_call_past_the_request_timeout_is_answered_504() -> None:
    store = _SlowStore(watchdog_interval=None)
    app = create_app(store, ServerSettings(request_timeout=0.05, web_apps=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        response = await http.get("/v1/agl/resources/latest")
        assert response.status_code == 504
        assert response.json() == {"detail": "the store did not answer in time", "error_type": "TimeoutError"}
        assert (await http.get("/v1/agl/health")).status_code == 200  # the loop and the app still serve
