"""``LightningStoreThreaded``: upstream's facade that serialises every call to a store behind one lock.

Our stores are thread-safe and async-safe themselves, so this facade is only needed by code written for upstream
v0.3 (or to make a third-party store that is neither safe to share between threads).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any, Callable, Coroutine, Optional

from .base import STORE_CALLS, LightningStore, LightningStoreCapabilities, LightningStoreStatistics

__all__ = ["LightningStoreThreaded"]

# Every store call that the lock serialises (wait_for_rollouts is left out: it may block for a long time).
_LOCKED_METHODS = [name for name in STORE_CALLS if name != "wait_for_rollouts"]

# Writes that only some stores have (the HTTP client's OTLP export): present on the facade when the wrapped store
# has them, and serialised like the store calls.
_LOCKED_OPTIONAL = frozenset({"export_otlp"})


class LightningStoreThreaded(LightningStore):
    """Wrap ``store`` so that at most one call runs at a time, from any thread or event loop.

    Arguments are forwarded verbatim; ``wait_for_rollouts`` is not serialised. ``export_otlp`` exists when the
    wrapped store has it (the HTTP store client) and is serialised too. Capabilities are the wrapped store's plus
    ``thread_safe`` and ``async_safe``.
    """

    def __init__(self, store: LightningStore) -> None:
        self.store = store
        self._lock = threading.Lock()

    @property
    def capabilities(self) -> LightningStoreCapabilities:
        merged = LightningStoreCapabilities(**self.store.capabilities)
        merged["thread_safe"] = True
        merged["async_safe"] = True
        return merged

    async def statistics(self) -> LightningStoreStatistics:
        return await self.store.statistics()

    def otlp_traces_endpoint(self) -> str:
        return self.store.otlp_traces_endpoint()

    def reopen_url(self) -> Optional[str]:
        return self.store.reopen_url()

    async def close(self) -> None:
        await self.store.close()

    async def wait_for_rollouts(self, *args: Any, **kwargs: Any) -> Any:
        return await self.store.wait_for_rollouts(*args, **kwargs)

    async def _locked(self, call: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        # Never block the event loop on the lock: another coroutine of this loop may hold it across an await.
        if not self._lock.acquire(blocking=False):
            await asyncio.get_running_loop().run_in_executor(None, self._lock.acquire)
        try:
            return await call()
        finally:
            self._lock.release()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.__dict__["store"], name)
        if name in _LOCKED_OPTIONAL:
            return functools.partial(self._call_locked, target)
        return target

    async def _call_locked(self, target: Callable[..., Coroutine[Any, Any, Any]], *args: Any, **kwargs: Any) -> Any:
        return await self._locked(lambda: target(*args, **kwargs))

    def __repr__(self) -> str:
        return f"LightningStoreThreaded({self.store!r})"


def _forward(name: str) -> Callable[..., Any]:
    @functools.wraps(getattr(LightningStore, name))
    async def method(self: LightningStoreThreaded, *args: Any, **kwargs: Any) -> Any:
        return await self._locked(lambda: getattr(self.store, name)(*args, **kwargs))

    return method


for _name in _LOCKED_METHODS:
    setattr(LightningStoreThreaded, _name, _forward(_name))
