"""``@algo``: an algorithm from a function whose parameters name what it needs."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Dict, Optional

from agentlightning.types.core import Dataset

from .base import Algorithm

__all__ = ["algo", "FunctionalAlgorithm"]

_INJECTED = {
    "store": "get_store",
    "adapter": "get_adapter",
    "llm_proxy": "get_llm_proxy",
    "initial_resources": "get_initial_resources",
}


class FunctionalAlgorithm(Algorithm):
    """Wraps ``func``; ``run`` passes, by parameter name, ``store``, ``adapter``, ``llm_proxy``,
    ``initial_resources``, ``train_dataset`` and ``val_dataset``."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self._algo_func = func
        self._sig = inspect.signature(func)
        self._is_async = inspect.iscoroutinefunction(func)
        functools.update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._algo_func(*args, **kwargs)

    def is_async(self) -> bool:
        return self._is_async

    def run(self, train_dataset: Optional[Dataset[Any]] = None, val_dataset: Optional[Dataset[Any]] = None) -> Any:
        params = self._sig.parameters
        kwargs: Dict[str, Any] = {}
        for name, getter in _INJECTED.items():
            if name in params:
                kwargs[name] = getattr(self, getter)()
        for name, value in (("train_dataset", train_dataset), ("val_dataset", val_dataset)):
            if name in params:
                kwargs[name] = value
            elif value is not None:
                raise TypeError(f"{name} is provided but not supported by the algorithm function: {self._algo_func}")
        return self._algo_func(**kwargs)


def algo(func: Callable[..., Any]) -> FunctionalAlgorithm:
    """Make an :class:`Algorithm` of ``func`` (sync or async)."""
    return FunctionalAlgorithm(func)
