"""The tracer contract and the active tracer that emitters write to.

A tracer is used as ``init`` -> ``init_worker`` -> ``async with trace_context(...)`` (one per rollout attempt) ->
``teardown_worker`` -> ``teardown``. While a trace context is open its tracer is the *active tracer* of the current
task: the active tracer lives in a :class:`contextvars.ContextVar`, so concurrent rollouts in one process (asyncio
or trio tasks, threads started with a copied context) each see their own. Code that runs without that context (a
plain ``threading.Thread`` started by an agent framework) sees the one open trace context of the process when there
is exactly one, as upstream's process-wide active tracer did; with several open it sees none.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import functools
import logging
import threading
import warnings
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncContextManager,
    AsyncIterator,
    Callable,
    ContextManager,
    Dict,
    Iterator,
    List,
    Optional,
    TypeVar,
    Union,
)

from agentlightning.types.core import StatusCode
from agentlightning.types.tracer import Span, SpanCoreFields, SpanRecordingContext, TraceStatus

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

__all__ = [
    "Tracer",
    "get_active_tracer",
    "set_active_tracer",
    "clear_active_tracer",
    "with_active_tracer_context",
    "as_trace_status",
]

logger = logging.getLogger(__name__)

_ACTIVE_TRACER: contextvars.ContextVar[Optional[Tracer]] = contextvars.ContextVar(
    "agentlightning_active_tracer", default=None
)

F = TypeVar("F", bound=Callable[..., Any])

_open_lock = threading.Lock()
_open_contexts: List[Tracer] = []


def open_trace_context_count() -> int:
    """How many trace contexts are open in this process, across tasks and threads."""
    return len(_open_contexts)


def get_active_tracer() -> Optional[Tracer]:
    """The tracer whose trace context is open in the current task; else the only one open in the process; or None."""
    tracer = _ACTIVE_TRACER.get()
    if tracer is None:
        with _open_lock:
            if len(_open_contexts) == 1:
                return _open_contexts[0]
    return tracer


def set_active_tracer(tracer: Tracer) -> contextvars.Token[Optional[Tracer]]:
    """Make ``tracer`` active in the current context; ValueError if one is active already (no nesting)."""
    current = _ACTIVE_TRACER.get()
    if current is not None:
        raise ValueError(f"An active tracer is already set ({type(current).__name__}); trace contexts do not nest")
    return _ACTIVE_TRACER.set(tracer)


def clear_active_tracer() -> None:
    _ACTIVE_TRACER.set(None)


def with_active_tracer_context(func: F) -> F:
    """Wrap a ``trace_context`` async context manager factory so that its tracer is active inside it."""

    @functools.wraps(func)
    @contextlib.asynccontextmanager
    async def wrapper(self: Tracer, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        token = set_active_tracer(self)
        with _open_lock:
            _open_contexts.append(self)
        try:
            async with func(self, *args, **kwargs) as value:
                yield value
        finally:
            with _open_lock:
                _open_contexts.remove(self)
            try:
                _ACTIVE_TRACER.reset(token)
            except ValueError:  # exited in another context: clear there
                _ACTIVE_TRACER.set(None)

    return wrapper  # type: ignore[return-value]


def as_trace_status(status: Union[StatusCode, TraceStatus, None], default: StatusCode = "OK") -> TraceStatus:
    if status is None:
        return TraceStatus(status_code=default)
    if isinstance(status, TraceStatus):
        return status
    return TraceStatus(status_code=status)


class Tracer(abc.ABC):  # noqa: B024 (a subclass implements what it supports; the rest raise)
    """Records what an agent does as spans and hands them to the store."""

    def __init__(self) -> None:
        self.worker_id: Optional[int] = None
        self._store: Optional[LightningStore] = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def init(self, *args: Any, **kwargs: Any) -> None:
        """Process-level setup, once, in the main process."""

    def teardown(self, *args: Any, **kwargs: Any) -> None:
        """Undo :meth:`init`."""

    def init_worker(self, worker_id: int, store: Optional[LightningStore] = None) -> None:
        """Per-worker setup; ``store`` is where spans go unless a trace context names another."""
        self.worker_id = worker_id
        self._store = store

    def teardown_worker(self, worker_id: int) -> None:
        """Undo :meth:`init_worker`."""
        self.worker_id = None

    @contextlib.contextmanager
    def lifespan(self, store: Optional[LightningStore] = None) -> Iterator[Tracer]:
        """``init`` + ``init_worker(0, store)`` ... ``teardown_worker(0)`` + ``teardown`` (only steps that ran)."""
        self.init()
        try:
            self.init_worker(0, store)
            try:
                yield self
            finally:
                self.teardown_worker(0)
        finally:
            self.teardown()

    # -- tracing ---------------------------------------------------------------------------------------------

    def trace_context(
        self,
        name: Optional[str] = None,
        *,
        store: Optional[LightningStore] = None,
        rollout_id: Optional[str] = None,
        attempt_id: Optional[str] = None,
    ) -> AsyncContextManager[Any]:
        """Open a trace for one attempt; every span is in the store when the context has exited."""
        raise NotImplementedError(f"{type(self).__name__} does not implement trace_context()")

    def get_last_trace(self) -> List[Span]:
        """The spans of the open trace context, or of the last one that closed."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_last_trace()")

    def create_span(
        self,
        name: str,
        attributes: Optional[Dict[str, Any]] = None,
        timestamp: Optional[float] = None,
        status: Union[StatusCode, TraceStatus, None] = None,
    ) -> SpanCoreFields:
        """Record a finished, zero-length span now (or at ``timestamp``, in seconds)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement create_span()")

    def operation_context(
        self,
        name: str,
        attributes: Optional[Dict[str, Any]] = None,
        start_time: Optional[float] = None,
        end_time: Optional[float] = None,
    ) -> ContextManager[SpanRecordingContext]:
        """A span that covers the ``with`` body; exceptions set status ERROR and are re-raised."""
        raise NotImplementedError(f"{type(self).__name__} does not implement operation_context()")

    def get_langchain_handler(self) -> Any:
        warnings.warn(f"{type(self).__name__} has no LangChain callback handler", stacklevel=2)
        return None
