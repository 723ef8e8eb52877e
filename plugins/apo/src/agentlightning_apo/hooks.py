"""Registers the ``apo`` algorithm and the top-level ``agentlightning.APO`` (no heavy imports here)."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_algorithms(register: Register) -> None:
    register(
        "apo",
        "agentlightning_apo.apo:APO",
        description="Automatic prompt optimisation: beam search over a prompt template with LLM critiques and edits.",
    )


@hookimpl
def agentlightning_register_exports(register: Register) -> None:
    register("APO", "agentlightning_apo.apo:APO")
    register("VersionedPromptTemplate", "agentlightning_apo.state:VersionedPromptTemplate")
