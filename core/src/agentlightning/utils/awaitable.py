"""Results that can be used plainly or awaited, for methods upstream v0.3 made ``async`` and ours are not."""

from __future__ import annotations

from typing import Any, Generator, Generic, TypeVar

__all__ = ["Completed"]

T = TypeVar("T")


class Completed(Generic[T]):
    """The result of work already done: ``await`` it (upstream's ``await server.stop()``) or ignore it.

    Unlike a coroutine, dropping it without awaiting is fine: nothing is left to run.
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, T]:
        return self.value
        yield  # a generator function: ``await`` gets ``value`` without suspending

    def __repr__(self) -> str:
        return f"Completed({self.value!r})"
