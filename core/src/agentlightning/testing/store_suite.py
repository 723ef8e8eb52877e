"""The former home of the store conformance suite; it now lives in :mod:`agentlightning.testing.store`.

New tests subclass :class:`~agentlightning.testing.store.StoreConformance` or
:class:`~agentlightning.testing.store.EngineStoreConformance`. The old layout still works: a test module that does
``from agentlightning.testing.store_suite import *`` and defines a module-level ``store_factory`` fixture (taking
engine options) runs the whole engine suite through :class:`TestStoreConformance`.
"""

from __future__ import annotations

from .store import *  # noqa: F403
from .store import EngineStoreConformance
from .store import __all__ as _store_all

__all__ = [*_store_all, "TestStoreConformance"]


class TestStoreConformance(EngineStoreConformance):
    """The engine suite, collected in any module that star-imports this one (the old layout)."""
