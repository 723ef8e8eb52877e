"""The shared store conformance suite (agentlightning.testing.store_suite) against InMemoryLightningStore."""

from __future__ import annotations

import pytest

pytest.importorskip("agentlightning.testing.store_suite")

from agentlightning.testing.store_suite import *  # noqa: E402, F403
