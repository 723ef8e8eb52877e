"""Registers the ``verl`` algorithm, the ``VERL`` export and ``agl verl check`` (imports nothing heavy)."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


def _description() -> str:
    from .deps import INSTALL_HINT, missing_gpu_modules

    missing = missing_gpu_modules()
    text = "Distributed PPO/GRPO on verl with vLLM rollout servers (token ids) behind the LLM proxy."
    if missing:
        text += f" Missing GPU extra ({', '.join(missing)}): {INSTALL_HINT}."
    return text


@hookimpl
def agentlightning_register_algorithms(register: Register) -> None:
    register("verl", "agentlightning_verl.algorithm:VERL", description=_description())


@hookimpl
def agentlightning_register_exports(register: Register) -> None:
    register("VERL", "agentlightning_verl.algorithm:VERL")


@hookimpl
def agentlightning_register_commands(register: Register) -> None:
    register("verl", "agentlightning_verl.cli:configure", description="verl plugin tools: `agl verl check`.")
