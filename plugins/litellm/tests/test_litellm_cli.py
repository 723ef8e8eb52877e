"""``agl proxy serve`` as a user runs it: a foreground process recording into a store served over HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import anyio
import httpx
import openai
import pytest
from agentlightning.testing.openai_server import OpenAITestServer
from agentlightning_memory import InMemoryLightningStore
from agentlightning_server.server import LightningStoreServer
from llmproxy_helpers import expected_chat_ids, proxy_spans

pytestmark = pytest.mark.slow


def test_agl_proxy_serve_records_calls_into_the_store(backend: OpenAITestServer) -> None:
    store = InMemoryLightningStore()
    agl = shutil.which("agl", path=os.path.dirname(sys.executable)) or "agl"
    with LightningStoreServer(store, "127.0.0.1", 0) as server:
        rollout = anyio.run(store.start_rollout, "task")
        command = [
            agl, "proxy", "serve", "--port", "0", "--store", server.endpoint,
            "--model", f"policy=hosted_vllm/test-model@{backend.base_url}",
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("LLM proxy listening on http://127.0.0.1:"), line
            endpoint = line.split()[-1]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(endpoint + "/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            base = f"{endpoint}/rollout/{rollout.rollout_id}/attempt/{rollout.attempt.attempt_id}/v1"
            client = openai.OpenAI(base_url=base, api_key="k", max_retries=0, timeout=60)
            reply = client.chat.completions.create(model="policy", messages=[{"role": "user", "content": "cli"}])
            assert reply.choices[0].message.content == "echo: cli"
            client.close()
            spans = anyio.run(proxy_spans, store, rollout.rollout_id, rollout.attempt.attempt_id, 1)
            root = next(s for s in spans if s.name == "litellm_request")
            assert root.attributes["prompt_token_ids"] == expected_chat_ids([{"role": "user", "content": "cli"}])[0]
            assert httpx.get(endpoint + "/agl/stats").json()["otlp_endpoint"] == server.endpoint + "/v1/traces"
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            if process.stdout is not None:
                process.stdout.close()
