"""Upstream's module path of ``system_snapshot`` (the host figures a runner's heartbeat carries)."""

from __future__ import annotations

from agentlightning.runner.heartbeat import system_snapshot

__all__ = ["system_snapshot"]
