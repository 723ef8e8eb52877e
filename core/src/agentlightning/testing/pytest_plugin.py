"""Pytest fixtures for plugin authors (enable with ``-p agentlightning.testing.pytest_plugin``).

- ``plugin_manager``: a fresh :class:`~agentlightning.plugins.PluginManager` with entry-point autoload off,
  installed as the process-wide manager for the test and restored afterwards. Register your hooks module with
  ``plugin_manager.register(my_hooks)``.
- ``anyio_backend``: parametrised over asyncio and trio, so ``@pytest.mark.anyio`` tests run on both.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from agentlightning.plugins import PluginManager, reset_plugin_manager


@pytest.fixture
def plugin_manager() -> Iterator[PluginManager]:
    manager = PluginManager(autoload=False)
    previous = reset_plugin_manager(manager)
    try:
        yield manager
    finally:
        reset_plugin_manager(previous)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: Any) -> str:
    return str(request.param)
