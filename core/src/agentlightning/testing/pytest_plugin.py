"""Pytest fixtures for plugin authors, loaded automatically wherever agentlightning-core is installed (a ``pytest11``
entry point named ``agentlightning``).

- ``plugin_manager``: a fresh :class:`~agentlightning.plugins.PluginManager` with entry-point autoload off,
  installed as the process-wide manager for the test and restored afterwards. Register your hooks module with
  ``plugin_manager.register(my_hooks)``.
- ``anyio_backend`` for every ``@pytest.mark.anyio`` test, only when the ``agl_anyio_backends`` ini option names
  backends (``agl_anyio_backends = ["asyncio", "trio"]`` runs each such test on both); otherwise anyio's own default
  (asyncio) stays, so installing agentlightning changes nothing in unrelated projects. The store conformance classes
  run on asyncio and trio whatever this says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, List, Literal

import pytest

if TYPE_CHECKING:
    from agentlightning.plugins import PluginManager

BACKENDS_INI = "agl_anyio_backends"


def pytest_addoption(parser: pytest.Parser) -> None:
    kind: Literal["args"] = "args"
    parser.addini(BACKENDS_INI, type=kind, default=[], help="anyio backends every anyio test runs on")


def pytest_configure(config: pytest.Config) -> None:
    backends: List[str] = list(config.getini(BACKENDS_INI))
    if backends:
        config.pluginmanager.register(_anyio_backends(backends), "agentlightning-anyio-backends")


def _anyio_backends(backends: List[str]) -> Any:
    class AnyioBackends:
        @pytest.fixture(params=backends)
        def anyio_backend(self, request: Any) -> str:
            return str(request.param)

    return AnyioBackends()


@pytest.fixture
def plugin_manager() -> Iterator[PluginManager]:
    # imported here: this module loads in every pytest run where agentlightning-core is installed
    from agentlightning.plugins import PluginManager, reset_plugin_manager

    manager = PluginManager(autoload=False)
    previous = reset_plugin_manager(manager)
    try:
        yield manager
    finally:
        reset_plugin_manager(previous)
