"""`import agentlightning` stays light: no plugin module and no heavy library is imported."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "torch",
    "openai",
    "anthropic",
    "google.genai",
    "litellm",
    "agentops",
    "verl",
    "vllm",
    "transformers",
    "starlette",
    "uvicorn",
    "httpx",
    "numpy",
    "opentelemetry.sdk",
    "cattrs",
    "jinja2",
    "pydantic",
)


def imported_after(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_agentlightning_imports_no_plugin_and_nothing_heavy() -> None:
    modules = imported_after("import agentlightning")
    assert not [m for m in modules if m.startswith("agentlightning_")]
    assert not [m for m in modules if m.split(".")[0] in HEAVY or any(m.startswith(h + ".") or m == h for h in HEAVY)]
    assert "importlib.metadata" not in modules or "agentlightning.plugins.manager" not in modules


def test_plugin_discovery_imports_only_hooks_modules() -> None:
    modules = imported_after("import agentlightning\nagentlightning.get_plugin_manager().registries()")
    heavy = [m for m in modules if m.split(".")[0] in {"torch", "litellm", "agentops", "verl", "vllm", "transformers"}]
    assert heavy == []


LLM_CLIENTS = ("openai", "anthropic", "litellm", "google.genai")


def test_the_default_tracer_imports_no_llm_client_until_the_agent_does() -> None:
    """The default tracer watches the LLM client libraries; starting it imports none of them."""
    code = "from agentlightning.tracer.otel import OtelTracer\nOtelTracer().init_worker(0)"
    modules = imported_after(code)
    assert "agentlightning.instrumentation.auto" in modules
    assert not [m for m in modules if any(m == c or m.startswith(c + ".") for c in LLM_CLIENTS)]
