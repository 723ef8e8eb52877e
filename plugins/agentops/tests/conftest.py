"""Fixtures: the OpenAI test server, a memory store, an initialised AgentOpsTracer, and a subprocess runner.

AgentOps keeps one tracing core per process (and OpenTelemetry one global provider): tests that need a fresh
process run a script with :func:`run_script`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
from agentlightning.testing.openai_server import OpenAITestServer

pytest.importorskip("agentops")
pytest.importorskip("openai")

HERE = Path(__file__).parent


@pytest.fixture(scope="session", autouse=True)
def _no_agentops_key() -> Iterator[None]:
    """Tests never hold a real key; AGENTOPS_* settings of the environment must not change them."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AGENTOPS_")}
    yield
    os.environ.update(saved)


@pytest.fixture
def openai_server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server


@pytest.fixture
def memory_store() -> Any:
    memory = pytest.importorskip("agentlightning_memory", reason="the memory store plugin")
    return memory.InMemoryLightningStore(watchdog_interval=None)


@pytest.fixture
def tracer() -> Iterator[Any]:
    from agentlightning_agentops import AgentOpsTracer

    tracer = AgentOpsTracer(flush_interval=0.02)
    tracer.init_worker(0)
    try:
        yield tracer
    finally:
        tracer.teardown_worker(0)


def run_script(body: str, *, env: Any = None, timeout: float = 60) -> str:
    """Run ``body`` (with ``socket_guard.py`` importable) in a fresh interpreter; return stdout, fail on error."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOPS_")}
    environment["PYTHONPATH"] = os.pathsep.join([str(HERE), environment.get("PYTHONPATH", "")])
    environment.update(env or {})
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=environment,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-5000:]}"
    return result.stdout
