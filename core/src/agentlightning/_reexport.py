"""Upstream module paths kept as light modules that re-export our objects on first access.

Upstream v0.3 put everything in one package (``agentlightning.store.memory``, ``agentlightning.llm_proxy``...). Here
those objects live in core modules or in plugins; the old paths stay importable and resolve their names lazily, so an
``import`` of the path costs nothing and a name whose plugin is missing says which distribution to install.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, Optional, Tuple


class PluginNotInstalledError(ImportError):
    """An upstream module path whose objects a plugin provides, and that plugin is not installed."""


def lazy_exports(
    module_name: str, targets: Dict[str, str], plugin: Optional[str] = None
) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """Return ``(__getattr__, __dir__)`` for a module that re-exports ``targets`` (name -> ``"module:attribute"``).

    ``plugin`` names the distribution (``"memory"`` for ``agentlightning-memory``) that provides the targets: when it
    is not installed, accessing a name raises :class:`PluginNotInstalledError` saying what to install.
    """

    def __getattr__(name: str) -> Any:
        target = targets.get(name)
        if target is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        source, _, attribute = target.partition(":")
        try:
            obj: Any = importlib.import_module(source)
        except ModuleNotFoundError as exc:
            if plugin is not None and exc.name is not None and source.startswith(exc.name):
                raise PluginNotInstalledError(
                    f"{module_name}.{name} is provided by the agentlightning-{plugin} plugin: "
                    f"pip install agentlightning-{plugin}",
                    name=module_name,
                ) from exc
            raise
        for part in attribute.split(".") if attribute else []:
            obj = getattr(obj, part)
        import sys

        setattr(sys.modules[module_name], name, obj)
        return obj

    def __dir__() -> List[str]:
        return sorted(targets)

    return __getattr__, __dir__
