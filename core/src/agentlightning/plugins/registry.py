"""Name -> factory registries, one per component kind, and the kinds themselves."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Generic, Iterable, Iterator, Optional, Protocol, Tuple, TypeVar, Union

import attrs

from .errors import ComponentTypeError, DuplicatePluginNameError

T = TypeVar("T")

Factory = Union[str, Callable[..., Any]]


class Register(Protocol):
    """The callable a registration hook receives: ``register(name, factory, *, description, aliases, url_schemes)``.

    ``factory`` is a class or callable, or a ``"module:attribute"`` string imported when the component is first
    built. ``aliases`` are other names for it; ``url_schemes`` (stores only) make ``<scheme>://...`` URLs resolve to it.
    """

    def __call__(
        self,
        name: str,
        factory: Factory,
        *,
        description: str = "",
        aliases: Iterable[str] = (),
        url_schemes: Iterable[str] = (),
    ) -> None: ...


def resolve_factory(factory: Factory) -> Callable[..., Any]:
    """Import ``"module:attribute"`` factories on demand; pass callables through."""
    if callable(factory):
        return factory
    module_name, _, attribute = factory.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split(".") if attribute else []:
        obj = getattr(obj, part)
    return obj


@attrs.frozen
class Kind(Generic[T]):
    """A component kind: its registry name, the hook that fills it, and what its factories must build.

    ``builds`` is the ``"module:Class"`` every built component must be an instance of (``None``: anything); it is
    imported only when a component is built, so declaring kinds costs nothing.
    """

    name: str
    builds: Optional[str] = None

    @property
    def label(self) -> str:
        """The singular, for messages: ``"execution strategy"``."""
        return _singular(self.name)

    @property
    def hook(self) -> str:
        """The hook that registers components of this kind, ``agentlightning_register_<name>``."""
        return f"agentlightning_register_{self.name}"


def _resolve_type(target: str) -> type:
    value = resolve_factory(target)
    assert isinstance(value, type), f"{target} is not a class"
    return value


@attrs.define(kw_only=True)
class Registration(Generic[T]):
    """One registered component and where it came from."""

    kind: str
    name: str
    factory: Factory
    plugin: str
    description: str = ""
    aliases: Tuple[str, ...] = ()
    url_schemes: Tuple[str, ...] = ()
    builds: Optional[str] = None
    """The ``"module:Class"`` that :meth:`create` checks its result against (from the kind)."""

    def load(self) -> Callable[..., T]:
        """The factory itself, importing it first when it was registered as a string.

        A factory that is a class must be a subclass of what the kind builds (:class:`ComponentTypeError` otherwise).
        """
        factory = resolve_factory(self.factory)
        expected = None if self.builds is None else _resolve_type(self.builds)
        if expected is not None and isinstance(factory, type) and not _is_subclass(factory, expected):
            raise ComponentTypeError(
                f"{self._what()} is the class {_qualname(factory)}, which is not a {expected.__name__}; "
                f"a {self.kind_label()} factory must build a {expected.__name__}"
            )
        return factory

    def create(self, *args: Any, **kwargs: Any) -> T:
        """Build the component; :class:`ComponentTypeError` (naming the plugin) when it is not of the kind's type."""
        obj = self.load()(*args, **kwargs)
        expected = None if self.builds is None else _resolve_type(self.builds)
        if expected is not None and not isinstance(obj, expected):
            raise ComponentTypeError(
                f"{self._what()} built a {_qualname(type(obj))}, not a {expected.__name__}; "
                f"a {self.kind_label()} factory must return a {expected.__name__}"
            )
        return obj

    def kind_label(self) -> str:
        """``"stores"`` -> ``"store"``, ``"execution_strategies"`` -> ``"execution strategy"``."""
        return _singular(self.kind)

    def _what(self) -> str:
        return f"{self.kind_label()} {self.name!r} registered by plugin {self.plugin!r}"


def _singular(kind: str) -> str:
    if kind.endswith("ies"):
        kind = kind[:-3] + "y"
    elif kind.endswith("s"):
        kind = kind[:-1]
    return kind.replace("_", " ")


def _is_subclass(cls: type, expected: type) -> bool:
    try:
        return issubclass(cls, expected)
    except TypeError:  # e.g. a generic alias
        return True


def _qualname(cls: Any) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', repr(cls))}"


class Registry(Generic[T]):
    """The components of one kind, by name (aliases included) and by URL scheme."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._by_name: Dict[str, Registration[T]] = {}
        self._by_scheme: Dict[str, Registration[T]] = {}

    def register(self, registration: Registration[T]) -> None:
        for key in (registration.name, *registration.aliases):
            existing = self._by_name.get(key)
            if existing is not None and existing.plugin != registration.plugin:
                raise DuplicatePluginNameError(
                    f"{_singular(self.kind)} {key!r} is registered by both plugin {existing.plugin!r} "
                    f"and plugin {registration.plugin!r}; uninstall or disable one of them"
                )
        for scheme in registration.url_schemes:
            existing = self._by_scheme.get(scheme)
            if existing is not None and existing.plugin != registration.plugin:
                raise DuplicatePluginNameError(
                    f"URL scheme {scheme!r} is registered by both plugin {existing.plugin!r} "
                    f"and plugin {registration.plugin!r}"
                )
        for key in (registration.name, *registration.aliases):
            self._by_name[key] = registration
        for scheme in registration.url_schemes:
            self._by_scheme[scheme] = registration

    def unregister_plugin(self, plugin: str) -> None:
        self._by_name = {k: v for k, v in self._by_name.items() if v.plugin != plugin}
        self._by_scheme = {k: v for k, v in self._by_scheme.items() if v.plugin != plugin}

    def get(self, name: str) -> Optional[Registration[T]]:
        return self._by_name.get(name)

    def get_scheme(self, scheme: str) -> Optional[Registration[T]]:
        return self._by_scheme.get(scheme)

    def names(self) -> list[str]:
        """Primary names, sorted (aliases left out)."""
        return sorted({r.name for r in self._by_name.values()})

    def schemes(self) -> list[str]:
        return sorted(self._by_scheme)

    def __iter__(self) -> Iterator[Registration[T]]:
        seen: Dict[Tuple[str, str], Registration[T]] = {}
        for reg in self._by_name.values():
            seen.setdefault((reg.plugin, reg.name), reg)
        return iter(sorted(seen.values(), key=lambda r: r.name))

    def __contains__(self, name: object) -> bool:
        return name in self._by_name
