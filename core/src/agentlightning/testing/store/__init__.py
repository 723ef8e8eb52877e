"""The store conformance suites: test classes a store plugin subclasses.

In the plugin's tests::

    import itertools

    import pytest
    from agentlightning.testing.store import EngineStoreConformance, StorageBackendConformance


    class TestMyStore(EngineStoreConformance):
        @pytest.fixture
        def store_factory(self, tmp_path):
            numbers = itertools.count()

            async def make(**options):  # a fresh, empty store; the suite closes it
                return MyStore(tmp_path / f"store-{next(numbers)}.db", **options)

            return make


    class TestMyBackend(StorageBackendConformance):
        @pytest.fixture
        def backend(self):
            backend = MyBackend()
            yield backend
            backend.close()

Three levels:

- :class:`StoreConformance`: the public LightningStore contract only (any store: built on the engine or not, local or
  remote). ``store_factory(**options)`` receives the class's ``store_options`` (none by default).
- :class:`EngineStoreConformance`: the contract plus what an :class:`~agentlightning.store.EngineLightningStore`
  promises about its options: ``store_factory`` must pass ``scan_debounce_seconds``, ``watchdog_interval`` and
  ``clock`` on to the engine (timeouts are then checked with a manual clock, without sleeping, and the state machine
  explores timeouts too).
- :class:`StorageBackendConformance`: a :class:`~agentlightning.store.StorageBackend` on its own, from a ``backend``
  fixture.

Async tests run on asyncio and trio. The concern-sized classes they are made of (``QueueTests``, ``SpanTests``, ...)
can be combined with :class:`StoreFixtures` to run part of the suite. The behaviour asserted is upstream Agent
Lightning v0.3's store contract with our deliberate changes: store errors are :mod:`agentlightning.store.errors`
types, timeouts fire on an idle store when a watchdog runs, OR span queries without filters return every span of the
rollout, ``add_span`` returns an equal span, unsorted queries return insertion order, ``limit=0`` returns no items but
the right total.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from ._support import (
    TIMEOUT_BOUND,
    WAKE_BOUND,
    ManualClock,
    StoreFactory,
    StoreFixtures,
    make_otel_span,
    make_span,
    poll,
    rollout_ids,
    running_rollout,
)
from .attempts import AttemptTests
from .backend import StorageBackendConformance
from .concurrency import ConcurrencyTests
from .queue import QueueTests
from .resources import ResourceTests
from .rollouts import QueryRolloutsTests, RolloutTests, StatisticsTests
from .spans import QuerySpansTests, SpanSequenceTests, SpanTests
from .stateful import (
    EngineStateMachineTests,
    StateMachineTests,
    StoreModel,
    StoreStateMachine,
    run_store_state_machine,
    stateful_backends,
    stateful_settings,
)
from .storable import StorableValueTests
from .timeouts import EngineTimeoutTests, TimeoutTests
from .validation import CloseTests, ValidationTests
from .waiting import WaitForRolloutsTests
from .workers import WorkerTests

__all__ = [
    "StoreConformance",
    "EngineStoreConformance",
    "StorageBackendConformance",
    "StoreFixtures",
    "StoreFactory",
    "ManualClock",
    "make_span",
    "make_otel_span",
    "running_rollout",
    "rollout_ids",
    "poll",
    "WAKE_BOUND",
    "TIMEOUT_BOUND",
    "StoreModel",
    "StoreStateMachine",
    "run_store_state_machine",
    "stateful_settings",
    "stateful_backends",
    "StatisticsTests",
    "RolloutTests",
    "QueryRolloutsTests",
    "QueueTests",
    "AttemptTests",
    "WorkerTests",
    "ResourceTests",
    "SpanSequenceTests",
    "SpanTests",
    "QuerySpansTests",
    "TimeoutTests",
    "EngineTimeoutTests",
    "WaitForRolloutsTests",
    "ConcurrencyTests",
    "ValidationTests",
    "StorableValueTests",
    "CloseTests",
    "StateMachineTests",
    "EngineStateMachineTests",
]


class StoreConformance(
    StoreFixtures,
    StatisticsTests,
    RolloutTests,
    QueryRolloutsTests,
    QueueTests,
    AttemptTests,
    WorkerTests,
    ResourceTests,
    SpanSequenceTests,
    SpanTests,
    QuerySpansTests,
    TimeoutTests,
    WaitForRolloutsTests,
    ConcurrencyTests,
    ValidationTests,
    StorableValueTests,
    CloseTests,
    StateMachineTests,
):
    """The LightningStore contract, for any store. Subclass it (``class TestMyStore(StoreConformance)``) and define
    a ``store_factory`` fixture: ``await store_factory(**store_options)`` returns a fresh, empty store.

    The store must notice overdue attempts on its own within ``TIMEOUT_BOUND`` seconds (e.g. by scanning in every
    call); configure it so in the factory.
    """


class EngineStoreConformance(EngineTimeoutTests, EngineStateMachineTests, StoreConformance):
    """:class:`StoreConformance` plus the engine's options: ``store_factory`` passes ``scan_debounce_seconds``,
    ``watchdog_interval`` and ``clock`` through to :class:`~agentlightning.store.EngineLightningStore`."""

    store_options: ClassVar[Mapping[str, Any]] = {"scan_debounce_seconds": 0, "watchdog_interval": None}
