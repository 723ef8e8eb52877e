"""Execution strategies: lay the algorithm and the runners out over tasks, threads or processes."""

from __future__ import annotations

from .base import AlgorithmBundle, ExecutionStrategy, RunnerBundle
from .client_server import ClientServerExecutionStrategy
from .events import ExecutionEvent, MultiprocessingEvent, ThreadingEvent
from .inprocess import InProcessExecutionStrategy
from .multiprocess import MultiProcessExecutionStrategy
from .shared_memory import SharedMemoryExecutionStrategy
from .store_link import StoreLink, StoreServer, link_store
from .supervision import RunnersExhaustedError

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
