"""The one cattrs converter that turns the models into JSON-ready dicts and back.

Wire shapes follow upstream v0.3: every field is written (``None`` included), resources are told apart by
``resource_type``, an AttemptedRollout is a rollout's JSON with an ``"attempt"`` key, and the keys a span (or its
context, status, events and links) does not know are kept and written back.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Type, TypeVar, Union, cast

import attrs

from .codegen import Declined, checked_dict_decoder
from .core import AttemptedRollout, PaginatedResult, Rollout
from .resources import LLM, RESOURCE_TYPES, PromptTemplate, ProxyLLM, ResourceUnion

__all__ = [
    "ValidationError",
    "get_converter",
    "to_dict",
    "from_dict",
    "from_json_dict",
    "to_json",
    "from_json",
    "rollout_from_dict",
    "resources_from_dict",
    "resources_to_dict",
    "paginated_to_dict",
]

if TYPE_CHECKING:
    import cattrs

T = TypeVar("T")


class ValidationError(ValueError):
    """Data that does not fit a model. The message names the model and the offending field."""


def _extras_field(cls: type) -> Optional[str]:
    if not attrs.has(cls):
        return None
    for field in attrs.fields(cls):
        if field.metadata.get("extras"):
            return field.name
    return None


def _strict(kind: type, name: str, accept: Callable[[Any], bool]) -> Callable[[Any, type], Any]:
    def hook(value: Any, _: type) -> Any:
        if not accept(value):
            raise ValueError(f"expected {name}, got {type(value).__name__} {value!r}")
        return kind(value)

    return hook


def _register_scalars(conv: cattrs.Converter) -> None:
    conv.register_structure_hook(str, _strict(str, "a string", lambda v: isinstance(v, str)))
    conv.register_structure_hook(bool, _strict(bool, "a boolean", lambda v: isinstance(v, bool)))
    conv.register_structure_hook(
        int,
        _strict(
            int,
            "an integer",
            lambda v: not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and v.is_integer())),
        ),
    )
    conv.register_structure_hook(
        float, _strict(float, "a number", lambda v: not isinstance(v, bool) and isinstance(v, (int, float)))
    )


def _register_extras(conv: cattrs.Converter) -> None:
    """Models with an ``extras`` field keep unknown JSON keys there and write them back at the top level."""
    import cattrs.gen

    def structure_factory(cls: type) -> Callable[[Any, type], Any]:
        extras_name = _extras_field(cls)
        assert extras_name is not None
        known = {f.name for f in attrs.fields(cls) if f.name != extras_name}
        overrides: Dict[str, Any] = {extras_name: cattrs.gen.override(omit=True)}
        base: Callable[[Any, type], Any] = cattrs.gen.make_dict_structure_fn(cls, conv, **overrides)

        def structure(data: Any, _: type) -> Any:
            if not isinstance(data, Mapping):
                raise ValueError(f"expected an object for {cls.__name__}, got {type(data).__name__}")
            obj = base({k: v for k, v in data.items() if k in known}, cls)
            extra = {k: v for k, v in data.items() if k not in known}
            if extra:
                object.__setattr__(obj, extras_name, extra)
            return obj

        return structure

    def unstructure_factory(cls: type) -> Callable[[Any], Any]:
        extras_name = _extras_field(cls)
        assert extras_name is not None
        overrides: Dict[str, Any] = {extras_name: cattrs.gen.override(omit=True)}
        base: Callable[[Any], Dict[str, Any]] = cattrs.gen.make_dict_unstructure_fn(cls, conv, **overrides)

        def unstructure(obj: Any) -> Dict[str, Any]:
            out = base(obj)
            extra = getattr(obj, extras_name)
            if extra:
                for key, value in extra.items():
                    out.setdefault(key, value)
            return out

        return unstructure

    has_extras = lambda cls: _extras_field(cls) is not None  # noqa: E731
    conv.register_structure_hook_factory(has_extras, structure_factory)
    conv.register_unstructure_hook_factory(has_extras, unstructure_factory)


def _structure_resource(data: Any, _: type) -> Any:
    if isinstance(data, (LLM, PromptTemplate)):
        return data
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a resource object, got {type(data).__name__}")
    kind = data.get("resource_type")
    cls = RESOURCE_TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"resource_type: {kind!r} is not one of {', '.join(RESOURCE_TYPES)}")
    return get_converter().structure(dict(data), cls)


def _structure_rollout(data: Any, _: type) -> Any:
    conv = get_converter()
    if isinstance(data, Mapping) and "attempt" in data:
        return conv.structure(data, AttemptedRollout)
    return conv.structure(data, Rollout)


_JSON_LEAVES = frozenset({str, int, float, bool, type(None)})


def _json_unstructurer(conv: cattrs.Converter) -> Callable[[Any], Any]:
    """Unstructure plain dicts and lists with one Python frame per level (cattrs' own hooks take three), so values
    as deep as a store accepts (:data:`agentlightning.store.limits.MAX_JSON_DEPTH`) convert without RecursionError."""

    def unstructure(value: Any) -> Any:
        if type(value) is dict:
            out: Dict[Any, Any] = {}
            for key, item in value.items():
                name = key if type(key) is str else conv.unstructure(key)
                out[name] = item if type(item) in _JSON_LEAVES else unstructure(item)
            return out
        if type(value) is list:
            items = []
            for item in value:
                items.append(item if type(item) in _JSON_LEAVES else unstructure(item))
            return items
        return conv.unstructure(value)

    return unstructure


@lru_cache(maxsize=1)
def get_converter() -> cattrs.Converter:
    """The project's converter. Built once, on first use, never at import."""
    import cattrs
    import cattrs.gen

    conv = cattrs.Converter(forbid_extra_keys=False)
    _register_scalars(conv)
    _register_extras(conv)
    conv.register_structure_hook(ResourceUnion, _structure_resource)
    conv.register_structure_hook(Union[Rollout, AttemptedRollout], _structure_rollout)
    conv.register_unstructure_hook(ProxyLLM, cattrs.gen.make_dict_unstructure_fn(ProxyLLM, conv))
    plain = _json_unstructurer(conv)
    conv.register_unstructure_hook(dict, plain)
    conv.register_unstructure_hook(list, plain)
    conv.register_unstructure_hook(
        PaginatedResult,
        lambda p: {
            "items": [conv.unstructure(i) for i in p.items],
            "limit": p.limit,
            "offset": p.offset,
            "total": p.total,
        },
    )
    return conv


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if str(exc):
        return str(exc)
    from cattrs.v import format_exception

    return format_exception(exc, type_)


def _describe(exc: BaseException, cls: Any) -> str:
    from cattrs.errors import BaseValidationError
    from cattrs.v import transform_error

    name = getattr(cls, "__name__", str(cls))
    if isinstance(exc, BaseValidationError):
        details = transform_error(exc, path=name, format_exception=_format_exception)
        return f"invalid {name}: " + "; ".join(details)
    return f"invalid {name}: {exc}"


def from_dict(data: Any, cls: Type[T]) -> T:
    """Build a model (or a typed container of models) from JSON-ready data; raises :class:`ValidationError`."""
    from cattrs.errors import BaseValidationError

    try:
        return get_converter().structure(data, cls)
    except ValidationError:
        raise
    except (BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValidationError(_describe(exc, cls)) from exc


def from_json_dict(data: Any, cls: Type[T]) -> T:
    """:func:`from_dict` for data parsed from JSON (a request body): the same model, or the same
    :class:`ValidationError`, several times faster for the usual data: a generated decoder checks each field's JSON
    type (:func:`~agentlightning.types.codegen.checked_dict_decoder`) and leaves what it does not take exactly as
    the converter would to :func:`from_dict`."""
    decode = checked_dict_decoder(cast(type, cls))
    if decode is not None:
        try:
            decoded: T = decode(data)
            return decoded
        except (Declined, KeyError, TypeError, ValueError):
            pass
    return from_dict(data, cls)


def to_dict(obj: Any) -> Any:
    """A model (or containers of models) as JSON-ready data."""
    return get_converter().unstructure(obj)


def to_json(obj: Any) -> str:
    return json.dumps(to_dict(obj))


def from_json(text: Union[str, bytes], cls: Type[T]) -> T:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"invalid {getattr(cls, '__name__', cls)}: malformed JSON ({exc})") from exc
    return from_dict(data, cls)


def rollout_from_dict(data: Any) -> Rollout:
    """A Rollout, or an AttemptedRollout when the data has an ``"attempt"`` key."""
    if isinstance(data, Mapping) and "attempt" in data:
        return from_dict(data, AttemptedRollout)
    return from_dict(data, Rollout)


def resources_from_dict(data: Any) -> Dict[str, Any]:
    """NamedResources from JSON."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"invalid NamedResources: expected an object, got {type(data).__name__}")
    out: Dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ValidationError(f"invalid NamedResources: key {key!r} is not a string")
        try:
            out[key] = _structure_resource(value, ResourceUnion)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise ValidationError(f"invalid NamedResources[{key!r}]: {exc}") from exc
        except Exception as exc:
            raise ValidationError(f"invalid NamedResources[{key!r}]: {_describe(exc, 'resource')}") from exc
    return out


def resources_to_dict(resources: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: to_dict(v) for k, v in resources.items()}


def paginated_to_dict(result: PaginatedResult[Any]) -> Dict[str, Any]:
    return to_dict(result)
