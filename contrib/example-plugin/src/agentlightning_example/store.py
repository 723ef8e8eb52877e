"""A store that forwards every call to another store and counts them."""

from __future__ import annotations

import collections
from typing import Any, Counter

from agentlightning.store import LightningStore, LightningStoreStatistics, open_store


class CountingStore:
    """Forwards to ``inner``; ``calls`` counts each method called. ``statistics()`` names this store and adds
    ``example_calls``."""

    def __init__(self, inner: LightningStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = collections.Counter()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> CountingStore:
        """``counting://memory://`` wraps ``memory://``: everything after ``counting://`` is the inner store."""
        return cls(open_store(url.split("://", 1)[1], **kwargs))

    async def statistics(self) -> LightningStoreStatistics:
        stats = dict(await self.inner.statistics())
        stats["name"] = type(self).__name__
        stats["example_calls"] = sum(self.calls.values())  # type: ignore[assignment]
        return stats  # type: ignore[return-value]

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target) or name.startswith("_"):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return target(*args, **kwargs)

        return counted

    async def __aenter__(self) -> CountingStore:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.inner.close()


LightningStore.register(CountingStore)  # a virtual subclass: usable wherever a LightningStore is expected
