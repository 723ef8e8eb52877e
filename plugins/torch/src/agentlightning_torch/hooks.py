"""Registers the ``grpo`` and ``sft`` algorithms, the ``GRPO`` / ``SFT`` exports and the ``agl quickstart`` command
(imports nothing heavy)."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_algorithms(register: Register) -> None:
    register(
        "grpo",
        "agentlightning_torch.grpo:GRPO",
        description="Group-relative policy optimisation of a local PyTorch policy served with token ids.",
    )
    register(
        "sft",
        "agentlightning_torch.sft:SFT",
        description="Supervised fine-tuning from traces (own or a teacher's) with rejection sampling.",
    )


@hookimpl
def agentlightning_register_exports(register: Register) -> None:
    register("GRPO", "agentlightning_torch.grpo:GRPO")
    register("PolicyServer", "agentlightning_torch.server:PolicyServer")
    register("SFT", "agentlightning_torch.sft:SFT")


@hookimpl
def agentlightning_register_commands(register: Register) -> None:
    register(
        "quickstart",
        "agentlightning_torch.quickstart.cli:configure",
        description="Train a bundled example agent with RL on this machine and report the reward curve.",
    )
