"""Offline by default: from import to interpreter exit, no connection leaves 127.0.0.1 (fresh processes)."""

from __future__ import annotations

import json

import pytest
from conftest import run_script

pytestmark = pytest.mark.network

# The guard is installed before anything else is imported; it reports refused attempts at exit (after AgentOps'
# own atexit shutdown, which flushes its span and metric exporters).
PRELUDE = """
import atexit, json, os, sys
import socket_guard
socket_guard.install()
atexit.register(lambda: print("ATTEMPTS=" + json.dumps([str(a) for a in socket_guard.attempts]), flush=True))
"""

AGENT = """
import anyio, openai
import agentlightning as agl
from agentlightning.adapter import TracerTraceToTriplet
from agentlightning.emitter import emit_reward
from agentlightning.testing.openai_server import OpenAITestServer, fake_tokenize
from agentlightning_memory import InMemoryLightningStore

async def main():
    store = InMemoryLightningStore(watchdog_interval=None)
    tracer = agl.AgentOpsTracer()
    tracer.init_worker(0, store)
    print("a print, which AgentOps would upload")
    with OpenAITestServer(lambda r: "ok") as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        rollout = await store.start_rollout({})
        async with tracer.trace_context("r", rollout_id=rollout.rollout_id, attempt_id=rollout.attempt.attempt_id):
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], extra_body={"return_token_ids": True}
            )
            emit_reward(1.0)
        stream = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                                      stream=True)
        async for _ in stream:
            pass
        await client.close()
    spans = list(await store.query_spans(rollout.rollout_id))
    (triplet,) = TracerTraceToTriplet().adapt(spans)
    assert triplet.response["token_ids"] == fake_tokenize("ok"), triplet
    assert triplet.reward == 1.0
    tracer.teardown_worker(0)
    print("AGENT-OK", flush=True)

anyio.run(main)
"""


def _attempts(stdout: str) -> list:
    (line,) = [x for x in stdout.splitlines() if x.startswith("ATTEMPTS=")]
    return json.loads(line[len("ATTEMPTS=") :])


def test_no_connection_leaves_localhost_even_with_an_api_key_in_the_environment() -> None:
    out = run_script(PRELUDE + AGENT, env={"AGENTOPS_API_KEY": "00000000-0000-0000-0000-000000000000"})
    assert "AGENT-OK" in out
    assert _attempts(out) == []


def test_the_guard_sees_agentops_when_the_service_is_enabled() -> None:
    """Control: with the service switched on, AgentOps asks its server for a token, and the guard catches that."""
    out = run_script(
        PRELUDE
        + """
        import time
        from agentlightning_agentops import AgentOpsTracer, enable_agentops_service
        enable_agentops_service()
        tracer = AgentOpsTracer()
        tracer.init_worker(0)
        deadline = time.monotonic() + 20
        while not socket_guard.attempts and time.monotonic() < deadline:
            time.sleep(0.05)
        print("ATTEMPTS=" + json.dumps([str(a) for a in socket_guard.attempts]), flush=True)
        os._exit(0)  # skip AgentOps' exit-time export retries: this test only needs the first attempt
        """.replace("\n        ", "\n"),
        env={"AGENTOPS_API_KEY": "00000000-0000-0000-0000-000000000000"},
    )
    attempts = _attempts(out)
    assert attempts, "the service was enabled but no connection was attempted: the guard would prove nothing"
    assert any("agentops" in a for a in attempts), attempts


def test_hooks_and_package_import_without_agentops() -> None:
    out = run_script(
        """
        import sys
        import agentlightning as agl
        from agentlightning.plugins.manager import get_plugin_manager
        import agentlightning_agentops, agentlightning_agentops.hooks
        assert "agentops" not in sys.modules, "agentops imported by the hooks module"
        registration = get_plugin_manager().get("tracers", "agentops")
        assert registration.plugin == "agentops", registration
        tracer = get_plugin_manager().create("tracers", "agentops", flush_interval=0.1)
        cls = agl.AgentOpsTracer
        assert isinstance(tracer, cls)
        assert "agentops" not in sys.modules, "agentops imported with the tracer class"
        from agentlightning_agentops.tracer import AgentOpsTracer
        assert cls is AgentOpsTracer
        try:
            AgentOpsTracer(agentops_managed=False).init_worker(0)
        except RuntimeError as exc:
            assert "agentops.init()" in str(exc), exc
        else:
            raise AssertionError("init_worker without AgentOps set up must fail")
        print("LIGHT-OK")
        """
    )
    assert "LIGHT-OK" in out
