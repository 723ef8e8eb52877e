"""``operation``: a span around a block or a function call, with its inputs and output as attributes."""

from __future__ import annotations

import functools
import inspect
from types import TracebackType
from typing import Any, Callable, ContextManager, Dict, Optional, Type, TypeVar, Union, overload

from agentlightning.semconv import AGL_OPERATION, LightningSpanAttributes
from agentlightning.tracer.attributes import flatten_attributes, sanitize_attributes
from agentlightning.tracer.base import Tracer
from agentlightning.types.tracer import SpanCoreFields, SpanRecordingContext

from ._common import encode_under, resolve_tracer

__all__ = ["operation", "OperationContext"]

F = TypeVar("F", bound=Callable[..., Any])
_INPUT = LightningSpanAttributes.OPERATION_INPUT
_OUTPUT = LightningSpanAttributes.OPERATION_OUTPUT
_NAME = LightningSpanAttributes.OPERATION_NAME


def _input_attributes(fn: Callable[..., Any], args: Any, kwargs: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        for i, value in enumerate(args):
            out.update(encode_under(f"{_INPUT}.args.{i}", value))
        for key, value in kwargs.items():
            out.update(encode_under(f"{_INPUT}.kwargs.{key}", value))
        return out
    bound.apply_defaults()
    params = bound.signature.parameters
    for name, value in bound.arguments.items():
        kind = params[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            for i, item in enumerate(value):
                out.update(encode_under(f"{_INPUT}.{name}.{i}", item))
        elif kind is inspect.Parameter.VAR_KEYWORD:
            for key, item in value.items():
                out.update(encode_under(f"{_INPUT}.{name}.{key}", item))
        else:
            out.update(encode_under(f"{_INPUT}.{name}", value))
    return out


def _active_tracer() -> Optional[Tracer]:
    # Upstream v0.3 defined operations in agentlightning.emitter.annotation: look the tracer up there, so that code
    # patching ``annotation.get_active_tracer`` (as upstream's tests do) reaches operations too.
    from . import annotation

    return annotation.get_active_tracer()


class OperationContext:
    """An ``agentlightning.operation`` span: a context manager, and a decorator of sync or async functions."""

    def __init__(
        self,
        name_or_attributes: Union[str, Dict[str, Any], None] = None,
        attributes: Union[Dict[str, Any], bool, None] = None,
        propagate: bool = True,
    ) -> None:
        # Ours: OperationContext(attributes, propagate). Upstream v0.3: OperationContext(name, attributes, propagate),
        # where name is the span's name (ours always names it agentlightning.operation).
        if isinstance(name_or_attributes, str):
            self.name: str = name_or_attributes
            initial = attributes if isinstance(attributes, dict) else {}
        else:
            self.name = AGL_OPERATION
            initial = name_or_attributes or {}
            if isinstance(attributes, bool):
                propagate = attributes
        self._attributes = initial
        self._propagate = propagate
        self._tracer: Tracer = resolve_tracer(propagate, "operation", _active_tracer)
        self._cm: Optional[ContextManager[SpanRecordingContext]] = None
        self._recording: Optional[SpanRecordingContext] = None
        self._span: Optional[SpanCoreFields] = None

    # -- context manager -------------------------------------------------------------------------------------

    def __enter__(self) -> OperationContext:
        attributes = sanitize_attributes(flatten_attributes(dict(self._attributes)))
        self._cm = self._tracer.operation_context(self.name, attributes=attributes)
        self._recording = self._cm.__enter__()
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> Optional[bool]:
        assert self._cm is not None and self._recording is not None
        try:
            return self._cm.__exit__(exc_type, exc, tb)
        finally:
            self._span = self._recording.get_recorded_span()

    def _record(self, attributes: Dict[str, Any]) -> None:
        if self._recording is None:
            raise RuntimeError("set_input/set_output can only be called inside the `with operation(...)` block")
        self._recording.record_attributes(attributes)

    def set_input(self, *args: Any, **kwargs: Any) -> None:
        """Record positional inputs as ``...input.args.<i>`` and keyword inputs as ``...input.<key>``."""
        attrs: Dict[str, Any] = {}
        for i, value in enumerate(args):
            attrs.update(encode_under(f"{_INPUT}.args.{i}", value))
        for key, value in kwargs.items():
            attrs.update(encode_under(f"{_INPUT}.{key}", value))
        self._record(attrs)

    def set_output(self, value: Any) -> None:
        self._record(encode_under(_OUTPUT, value))

    def span(self) -> SpanCoreFields:
        """The recorded span; available once the ``with`` block has exited."""
        if self._span is None:
            raise RuntimeError("the operation span is available only after the `with` block has exited")
        return self._span

    # -- decorator -------------------------------------------------------------------------------------------

    def __call__(self, fn: F) -> F:
        return _decorate(fn, self._attributes, self._propagate)


def _decorate(fn: F, attributes: Dict[str, Any], propagate: bool) -> F:
    base = {_NAME: getattr(fn, "__name__", "operation"), **attributes}

    def start() -> OperationContext:
        return OperationContext(base, propagate)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with start() as op:
                op._record(_input_attributes(fn, args, kwargs))
                result = await fn(*args, **kwargs)
                op.set_output(result)
                return result

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with start() as op:
            op._record(_input_attributes(fn, args, kwargs))
            result = fn(*args, **kwargs)
            op.set_output(result)
            return result

    return wrapper  # type: ignore[return-value]


@overload
def operation(fn: F) -> F: ...
@overload
def operation(fn: None = None, *, propagate: bool = True, name: Optional[str] = None, **attributes: Any) -> Any: ...


def operation(
    fn: Optional[Callable[..., Any]] = None, *, propagate: bool = True, name: Optional[str] = None, **attributes: Any
) -> Union[Callable[..., Any], OperationContext]:
    """Trace a block (``with operation(name="plan") as op:``) or every call of a function (``@operation``).

    ``name`` sets ``agentlightning.operation.name``; the span itself is always named ``agentlightning.operation``.
    Decorated functions resolve the active tracer per call; a ``with`` block resolves it when created.
    """
    if fn is not None and not callable(fn):
        raise ValueError(
            f"operation() got a positional {type(fn).__name__}; pass the operation name as name=..., e.g. "
            "operation(name='plan')"
        )
    attrs = sanitize_attributes(flatten_attributes(attributes)) if attributes else {}
    if name is not None:
        if _NAME in attrs:
            raise ValueError(f"Cannot specify both name= and the {_NAME} attribute")
        attrs[_NAME] = name
    if fn is not None:
        return _decorate(fn, attrs, propagate)
    return _LazyOperation(attrs, propagate)


class _LazyOperation(OperationContext):
    """Returned by ``operation(...)``: used as a decorator it binds nothing; as a context it resolves the tracer."""

    def __init__(self, attributes: Dict[str, Any], propagate: bool = True) -> None:
        self.name = AGL_OPERATION
        self._attributes = attributes
        self._propagate = propagate
        self._resolved = False
        self._cm = None
        self._recording = None
        self._span = None

    def __enter__(self) -> OperationContext:
        if not self._resolved:
            self._tracer = resolve_tracer(self._propagate, "operation", _active_tracer)
            self._resolved = True
        return super().__enter__()
