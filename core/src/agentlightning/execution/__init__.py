"""Execution strategies: lay the algorithm and the runners out over tasks, threads or processes."""

from __future__ import annotations

from .base import AlgorithmBundle, ExecutionStrategy, RunnerBundle
from .events import ExecutionEvent, MultiprocessingEvent, ThreadingEvent
from .inprocess import InProcessExecutionStrategy
from .multiprocess import MultiProcessExecutionStrategy
from .store_link import StoreLink, StoreServer, link_store
from .supervision import RunnersExhaustedError

# Upstream v0.3 names.
SharedMemoryExecutionStrategy = InProcessExecutionStrategy
ClientServerExecutionStrategy = MultiProcessExecutionStrategy

__all__ = [
    "ExecutionStrategy",
    "AlgorithmBundle",
    "RunnerBundle",
    "ExecutionEvent",
    "ThreadingEvent",
    "MultiprocessingEvent",
    "InProcessExecutionStrategy",
    "MultiProcessExecutionStrategy",
    "SharedMemoryExecutionStrategy",
    "ClientServerExecutionStrategy",
    "StoreLink",
    "StoreServer",
    "link_store",
    "RunnersExhaustedError",
]
