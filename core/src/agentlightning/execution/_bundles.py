"""Running a bundle until it finishes or a stop event asks it to, with a grace period before cancelling."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, List, Optional

import anyio

from .events import ExecutionEvent

__all__ = ["run_until_stopped", "POLL_SECONDS"]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05


async def run_until_stopped(
    fn: Callable[..., Awaitable[Any]], *args: Any, event: ExecutionEvent, graceful_timeout: float, what: str
) -> Any:
    """Run ``fn(*args)``; once ``event`` is set it has ``graceful_timeout`` seconds to return, then it is cancelled.
    Its exception propagates as itself (not inside an exception group)."""
    result: List[Any] = []
    scope = anyio.CancelScope()

    async def body() -> None:
        result.append(await fn(*args))
        scope.cancel()

    async def watch() -> None:
        while not event.is_set():  # noqa: ASYNC110 - a thread or process event: polled, not awaited
            await anyio.sleep(POLL_SECONDS)
        await anyio.sleep(graceful_timeout)
        logger.warning("%s did not stop within %.1f s of the stop request; cancelling it", what, graceful_timeout)
        scope.cancel()

    try:
        with scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(body)
                tg.start_soon(watch)
    except BaseException as exc:
        inner = unwrap_group(exc)
        if inner is exc:
            raise
        raise inner from None
    return result[0] if result else None


def _leaves(exc: BaseException) -> List[BaseException]:
    members = getattr(exc, "exceptions", None)
    if not isinstance(members, tuple):
        return [exc]
    return [leaf for member in members for leaf in _leaves(member)]


def unwrap_group(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups, so callers see e.g. the ``ValueError`` a runner
    raised rather than a group; any other failures in the group are logged."""
    leaves = _leaves(exc)
    if leaves == [exc]:
        return exc
    first = leaves[0]
    for other in leaves[1:]:
        logger.error("Another failure during the same run: %r", other)
    return first


def resolve_backend(backend: Optional[str]) -> str:
    backend = backend or "asyncio"
    if backend not in ("asyncio", "trio"):
        raise ValueError(f"backend must be 'asyncio' or 'trio', got {backend!r}")
    return backend
