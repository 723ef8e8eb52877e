"""Helpers for algorithm authors: dataset batching and store / LLM-proxy injection."""

from __future__ import annotations

import functools
import random
from typing import Any, Awaitable, Callable, Iterator, List, TypeVar

from agentlightning.types.core import Dataset

__all__ = ["batch_iter_over_dataset", "with_store", "with_llm_proxy"]

T = TypeVar("T")


def batch_iter_over_dataset(dataset: Dataset[T], batch_size: int) -> Iterator[List[T]]:
    """Endless batches of ``batch_size`` distinct items, reshuffling after each pass (a batch may straddle two
    passes). A batch size at least the dataset's length yields the whole dataset, shuffled, each time."""
    n = len(dataset)
    if n == 0:
        raise ValueError("batch_iter_over_dataset needs a non-empty dataset")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if batch_size >= n:
        while True:
            indices = list(range(n))
            random.shuffle(indices)
            yield [dataset[i] for i in indices]
    pending: List[int] = []
    while True:
        batch: List[int] = []
        while len(batch) < batch_size:
            if not pending:
                pending = list(range(n))
                random.shuffle(pending)
            index = pending.pop(0)
            if index not in batch:  # a batch straddling two passes never repeats an item
                batch.append(index)
        yield [dataset[i] for i in batch]


def with_store(func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``async def f(self, store, ...)`` becomes ``f(self, ...)``, with ``self.get_store()`` injected."""

    @functools.wraps(func)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await func(self, self.get_store(), *args, **kwargs)

    return wrapper


def with_llm_proxy(required: bool = False, auto_start: bool = True) -> Callable[..., Any]:
    """Inject ``self.get_llm_proxy()`` after ``self``; start it before (and stop it after) when it is not running."""

    def decorate(func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(func)
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            proxy = self.get_llm_proxy()
            if proxy is None:
                if required:
                    raise ValueError("LLM proxy is required but not configured. Pass llm_proxy= to the Trainer.")
                return await func(self, None, *args, **kwargs)
            started = False
            if auto_start and not _is_running(proxy):
                await _maybe_await(proxy.start())
                started = True
            try:
                return await func(self, proxy, *args, **kwargs)
            finally:
                if started:
                    await _maybe_await(proxy.stop())

        return wrapper

    return decorate


def _is_running(proxy: Any) -> bool:
    running = getattr(proxy, "is_running", None)
    if callable(running):
        return bool(running())
    return bool(running)


async def _maybe_await(value: Any) -> Any:
    import inspect

    if inspect.isawaitable(value):
        return await value
    return value
