"""Runners: execute an agent over the rollouts of a store."""

from __future__ import annotations

from .agent import LitAgentRunner, NoResourcesError
from .base import Runner
from .heartbeat import system_snapshot
from .hooks import Hook
from .legacy import LegacyAgentRunner

__all__ = ["Runner", "LitAgentRunner", "Hook", "NoResourcesError", "system_snapshot", "LegacyAgentRunner"]
