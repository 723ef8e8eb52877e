"""Plugin hooks: ``agl.LLMProxy``, ``agl.instrument_litellm`` and the ``agl proxy`` command. Imports nothing heavy."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_exports(register: Register) -> None:
    register("LLMProxy", "agentlightning_litellm.proxy:LLMProxy")
    register("instrument_litellm", "agentlightning_litellm.instrumentation:instrument_litellm")
    register("uninstrument_litellm", "agentlightning_litellm.instrumentation:uninstrument_litellm")


@hookimpl
def agentlightning_register_commands(register: Register) -> None:
    register("proxy", "agentlightning_litellm.cli:configure_parser", description="Run the LLM proxy (LiteLLM).")
