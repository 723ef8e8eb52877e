"""AgentOpsTracer beside an application's own OpenTelemetry or AgentOps setup (fresh processes: both are global)."""

from __future__ import annotations

import pytest
from conftest import run_script

pytestmark = pytest.mark.network

COMMON = """
import json, os, threading
import socket_guard
socket_guard.install()
import anyio, openai
from agentlightning.testing.openai_server import OpenAITestServer, fake_tokenize
from agentlightning_memory import InMemoryLightningStore

async def traced_call(tracer, store, server, text):
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    rollout = await store.start_rollout({})
    async with tracer.trace_context("app", rollout_id=rollout.rollout_id, attempt_id=rollout.attempt.attempt_id):
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": text}], extra_body={"return_token_ids": True}
        )
    await client.close()
    spans = list(await store.query_spans(rollout.rollout_id))
    (session,) = [s for s in spans if s.name == "app.session"]
    (chat,) = [s for s in spans if s.name == "openai.chat.completion"]
    assert chat.parent_id == session.span_id, spans
    assert chat.attributes["response_token_ids"] == fake_tokenize(text), chat.attributes
    return spans
"""


def test_application_otel_provider_keeps_working() -> None:
    out = run_script(
        COMMON
        + """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

app_exporter = InMemorySpanExporter()
app_provider = TracerProvider()
app_provider.add_span_processor(SimpleSpanProcessor(app_exporter))
trace.set_tracer_provider(app_provider)

from agentlightning_agentops import AgentOpsTracer

async def main():
    store = InMemoryLightningStore(watchdog_interval=None)
    tracer = AgentOpsTracer()
    tracer.init_worker(0, store)
    assert trace.get_tracer_provider() is app_provider, "the application's provider was replaced"
    with OpenAITestServer(lambda r: r["messages"][-1]["content"]) as server:
        with trace.get_tracer("app").start_as_current_span("app.own-work"):
            pass
        await traced_call(tracer, store, server, "first")
    tracer.teardown_worker(0)
    names = sorted(s.name for s in app_exporter.get_finished_spans())
    assert "app.own-work" in names, names
    print("APP-OTEL-OK", names)

anyio.run(main)
assert socket_guard.attempts == [], socket_guard.attempts
"""
    )
    assert "APP-OTEL-OK" in out


def test_application_agentops_setup_is_kept() -> None:
    """The application initialised AgentOps itself and reads its spans with its own processor."""
    out = run_script(
        COMMON
        + """
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentops
local = "http://127.0.0.1:9"  # AgentOps' own endpoints, kept local: the guard would refuse anything else
agentops.init(endpoint=local, exporter_endpoint=local + "/v1/traces", auto_start_session=False,
              log_session_replay_url=False)
from agentops.sdk.core import tracer as agentops_core
app_provider = agentops_core.provider
app_exporter = InMemorySpanExporter()
app_provider.add_span_processor(SimpleSpanProcessor(app_exporter))

from agentlightning_agentops import AgentOpsTracer

def app_names():
    return [s.name for s in app_exporter.get_finished_spans()]

async def main():
    store = InMemoryLightningStore(watchdog_interval=None)
    tracer = AgentOpsTracer()
    tracer.init_worker(0, store)
    assert tracer.tracer_provider is app_provider, "AgentOps was initialised again"
    with OpenAITestServer(lambda r: r["messages"][-1]["content"]) as server:
        await traced_call(tracer, store, server, "first")
        assert app_names().count("openai.chat.completion") == 1, app_names()
        tracer.teardown_worker(0)
        # the application's AgentOps instrumentation is still on after our worker stopped
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "later"}])
        client.close()
    assert app_names().count("openai.chat.completion") == 2, app_names()
    print("APP-AGENTOPS-OK", app_names())

anyio.run(main)
assert socket_guard.attempts == [], socket_guard.attempts
print(flush=True)
os._exit(0)  # skip the application's exit-time metric export to AgentOps' server (its choice, not ours)
"""
    )
    assert "APP-AGENTOPS-OK" in out
