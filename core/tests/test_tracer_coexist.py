"""An application that set its own global TracerProvider keeps its exporters; OtelTracer adds to it.

Runs in a subprocess: OpenTelemetry's global provider can be set only once per process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import anyio, openai
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    app_exporter = InMemorySpanExporter()
    app_provider = TracerProvider()
    app_provider.add_span_processor(SimpleSpanProcessor(app_exporter))
    trace.set_tracer_provider(app_provider)

    from agentlightning.adapter import TracerTraceToTriplet
    from agentlightning.emitter import emit_reward
    from agentlightning.testing.openai_server import OpenAITestServer, fake_tokenize
    from agentlightning.tracer.otel import OtelTracer
    from agentlightning_memory import InMemoryLightningStore

    async def main():
        store = InMemoryLightningStore(watchdog_interval=None)
        tracer = OtelTracer()
        tracer.init_worker(0, store)
        assert tracer.tracer_provider is app_provider, "the application's provider was replaced"
        with OpenAITestServer(lambda r: "ok") as server:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
            rollout = await store.start_rollout({})
            async with tracer.trace_context(rollout_id=rollout.rollout_id, attempt_id=rollout.attempt.attempt_id):
                await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}], extra_body={"return_token_ids": True}
                )
                emit_reward(1.0)
            await client.close()
        spans = list(await store.query_spans(rollout.rollout_id))
        (triplet,) = TracerTraceToTriplet().adapt(spans)
        assert triplet.response["token_ids"] == fake_tokenize("ok"), triplet
        assert triplet.reward == 1.0
        exported = sorted(s.name for s in app_exporter.get_finished_spans())
        assert exported == ["agentlightning.annotation", "openai.chat.completion"], exported
        tracer.teardown_worker(0)
        print("COEXIST-OK")

    anyio.run(main)
    """
)


@pytest.mark.network
def test_preexisting_global_provider_keeps_its_exporter() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "COEXIST-OK" in result.stdout
