"""Name -> factory registries, one per component kind."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Iterator, Optional, Protocol, Tuple, Union

import attrs

from .errors import DuplicatePluginNameError

Factory = Union[str, Callable[..., Any]]


class Register(Protocol):
    """The callable a registration hook receives."""

    def __call__(
        self,
        name: str,
        factory: Factory,
        *,
        description: str = "",
        aliases: Tuple[str, ...] = (),
        url_schemes: Tuple[str, ...] = (),
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


@attrs.define(kw_only=True)
class Registration:
    """One registered component and where it came from."""

    kind: str
    name: str
    factory: Factory
    plugin: str
    description: str = ""
    aliases: Tuple[str, ...] = ()
    url_schemes: Tuple[str, ...] = ()

    def load(self) -> Callable[..., Any]:
        """The factory itself, importing it first when it was registered as a string."""
        return resolve_factory(self.factory)

    def create(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)


class Registry:
    """The components of one kind, by name (aliases included)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._by_name: Dict[str, Registration] = {}
        self._by_scheme: Dict[str, Registration] = {}

    def register(self, registration: Registration) -> None:
        for key in (registration.name, *registration.aliases):
            existing = self._by_name.get(key)
            if existing is not None and existing.plugin != registration.plugin:
                raise DuplicatePluginNameError(
                    f"{self.kind[:-1]} {key!r} is registered by both plugin {existing.plugin!r} "
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

    def get(self, name: str) -> Optional[Registration]:
        return self._by_name.get(name)

    def get_scheme(self, scheme: str) -> Optional[Registration]:
        return self._by_scheme.get(scheme)

    def names(self) -> list[str]:
        """Primary names, sorted (aliases left out)."""
        return sorted({r.name for r in self._by_name.values()})

    def schemes(self) -> list[str]:
        return sorted(self._by_scheme)

    def __iter__(self) -> Iterator[Registration]:
        seen: Dict[Tuple[str, str], Registration] = {}
        for reg in self._by_name.values():
            seen.setdefault((reg.plugin, reg.name), reg)
        return iter(sorted(seen.values(), key=lambda r: r.name))

    def __contains__(self, name: object) -> bool:
        return name in self._by_name
