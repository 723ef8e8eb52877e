"""Building Trainer components from specs: an instance, a class, a factory, a registered name, an import path,
or a dict ``{"type": name_or_path, **kwargs}`` (upstream v0.3's ``build_component`` rules)."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Dict, Mapping, Optional, Type, TypeVar, Union

__all__ = ["load_class", "instantiate_component", "instantiate_from_spec", "build_component"]

T = TypeVar("T")


def load_class(path: str) -> Any:
    """``"pkg.mod.Class"`` or ``"pkg.mod:Class"`` -> the object."""
    if ":" in path:
        module_name, _, attribute = path.partition(":")
    else:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not an import path like 'package.module.Class'")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def _accepts(factory: Any, name: str) -> bool:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    param = params.get(name)
    return param is not None and param.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def instantiate_component(
    factory: Callable[..., T],
    provided_kwargs: Optional[Mapping[str, Any]] = None,
    optional_defaults: Optional[Mapping[str, Any]] = None,
) -> T:
    """``factory(**provided_kwargs)`` plus each optional default the factory names as a parameter and that was not
    provided (callable defaults are called first). ``**kwargs`` catch-alls receive none."""
    kwargs = dict(provided_kwargs or {})
    for name, value in (optional_defaults or {}).items():
        if name not in kwargs and _accepts(factory, name):
            kwargs[name] = value() if callable(value) and not inspect.isclass(value) else value
    return factory(**kwargs)


def _resolve(name: str, registry: Optional[Callable[[str], Optional[Callable[..., Any]]]]) -> Any:
    if registry is not None:
        found = registry(name)
        if found is not None:
            return found
    if "." not in name and ":" not in name:
        raise ValueError(f"{name!r} is neither a registered name nor an import path like 'package.module.Class'")
    return load_class(name)


def instantiate_from_spec(
    spec: Any,
    *,
    spec_name: str,
    optional_defaults: Optional[Mapping[str, Any]] = None,
    dict_requires_type: bool = True,
    dict_default_cls: Optional[Callable[..., Any]] = None,
    registry: Optional[Callable[[str], Optional[Callable[..., Any]]]] = None,
) -> Any:
    if isinstance(spec, str):
        return instantiate_component(_resolve(spec, registry), None, optional_defaults)
    if isinstance(spec, dict):
        kwargs: Dict[str, Any] = dict(spec)
        type_name = kwargs.pop("type", None)
        if type_name is None and registry is not None and "name" in kwargs:
            type_name = kwargs.pop("name")
        if type_name is not None:
            factory = type_name if callable(type_name) else _resolve(str(type_name), registry)
        elif dict_default_cls is not None and not dict_requires_type:
            factory = dict_default_cls
        elif dict_requires_type:
            raise ValueError(f"{spec_name} dict must have a 'type' key with the class full name")
        else:
            raise ValueError(f"{spec_name} dict missing 'type' and no default class provided")
        return instantiate_component(factory, kwargs, optional_defaults)
    raise TypeError(f"{spec_name} spec must be a string or dict (got {type(spec)}).")


def build_component(
    spec: Any,
    *,
    expected_type: Type[T],
    spec_name: str,
    default_factory: Optional[Callable[[], T]] = None,
    allow_none: bool = False,
    optional_defaults: Optional[Mapping[str, Any]] = None,
    dict_requires_type: bool = True,
    dict_default_cls: Optional[Callable[..., Any]] = None,
    registry: Union[Callable[[str], Optional[Callable[..., Any]]], Mapping[str, str], None] = None,
    type_error_fmt: Optional[str] = None,
    invalid_spec_error_fmt: Optional[str] = None,
) -> Optional[T]:
    """An instance of ``expected_type`` from ``spec``; ``registry(name)`` resolves registered names.

    Upstream v0.3's forms are accepted too: ``registry`` as a mapping of names to ``"module.Class"`` paths, and the
    error formats ``type_error_fmt`` (``{type_name}``, ``{expected_type}``) and ``invalid_spec_error_fmt``
    (``{actual_type}``, ``{expected_type}``).
    """
    if isinstance(registry, Mapping):
        registry = _mapping_registry(registry)

    def checked(obj: Any) -> Any:
        if type_error_fmt and not isinstance(obj, expected_type):
            raise TypeError(type_error_fmt.format(type_name=str(type(obj)), expected_type=expected_type.__name__))
        return _checked(obj, expected_type, spec_name)

    def invalid(default: str) -> ValueError:
        if invalid_spec_error_fmt:
            return ValueError(
                invalid_spec_error_fmt.format(actual_type=type(spec), expected_type=expected_type.__name__)
            )
        return ValueError(default)

    if isinstance(spec, expected_type):
        return spec
    if spec is None:
        if default_factory is not None:
            return checked(default_factory())
        if allow_none:
            return None
        raise invalid(f"{spec_name} cannot be None.")
    if inspect.isclass(spec) and issubclass(spec, expected_type):
        return instantiate_component(spec, None, optional_defaults)
    if callable(spec) and not inspect.isclass(spec):
        return checked(spec())
    if isinstance(spec, (str, dict)):
        built = instantiate_from_spec(
            spec,
            spec_name=spec_name,
            optional_defaults=optional_defaults,
            dict_requires_type=dict_requires_type,
            dict_default_cls=dict_default_cls,
            registry=registry,
        )
        return checked(built)
    raise invalid(f"Invalid {spec_name} type: {type(spec)}. Expected {expected_type.__name__}, str, dict, or None.")


def _mapping_registry(paths: Mapping[str, str]) -> Callable[[str], Optional[Callable[..., Any]]]:
    def lookup(name: str) -> Optional[Callable[..., Any]]:
        path = paths.get(name)
        return None if path is None else load_class(path)

    return lookup


def _checked(obj: Any, expected_type: type, spec_name: str) -> Any:
    if not isinstance(obj, expected_type):
        raise TypeError(f"{spec_name} factory returned {type(obj)}, which is not a {expected_type.__name__} subclass.")
    return obj


def plugin_registry(kind: str) -> Callable[[str], Optional[Callable[..., Any]]]:
    """A ``registry`` callable over the plugin manager's registry of ``kind``."""

    def lookup(name: str) -> Optional[Callable[..., Any]]:
        from agentlightning.plugins import get_plugin_manager

        registration = get_plugin_manager().registry(kind).get(name)
        return registration.load() if registration is not None else None

    return lookup
