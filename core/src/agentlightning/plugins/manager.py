"""The plugin manager: finds plugins through entry points, lazily, has pluggy call their hooks, and records every
failure.

Entry points are read on the first lookup, never at ``import agentlightning``. Each plugin module is registered with
a pluggy ``PluginManager`` (which validates its hook implementations against :mod:`.hookspecs`), and its registration
hooks are called through pluggy, one plugin at a time, so a broken one is recorded (name, distribution, version,
phase, error) and the rest still load.

Environment variables:

- ``AGL_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry point (built-ins and plugins registered by hand still work).
- ``AGL_LOAD_PLUGINS=a,b``: load only these entry points (empty: none).
- ``AGL_DISABLE_PLUGINS=a,b``: never load these entry points.
- ``AGL_STRICT_PLUGINS=1``: a failing plugin raises :class:`PluginLoadError` instead of a warning.
"""

from __future__ import annotations

import os
import threading
import traceback
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple, TypeVar, Union, overload

import attrs
import pluggy

from . import ENTRY_POINT_GROUP, PROJECT_NAME, hookspecs
from .errors import AgentLightningPluginWarning, DuplicatePluginNameError, PluginLoadError, UnknownComponentError
from .registry import Factory, Kind, Registration, Registry

if TYPE_CHECKING:
    from agentlightning.adapter.base import Adapter
    from agentlightning.algorithm.base import Algorithm
    from agentlightning.execution.base import ExecutionStrategy
    from agentlightning.execution.store_link import StoreServer
    from agentlightning.store.base import LightningStore
    from agentlightning.tracer.base import Tracer

T = TypeVar("T")

STORES: Kind[LightningStore] = Kind("stores", "agentlightning.store.base:LightningStore")
STORE_SERVERS: Kind[StoreServer] = Kind("store_servers", "agentlightning.execution.store_link:StoreServer")
TRACERS: Kind[Tracer] = Kind("tracers", "agentlightning.tracer.base:Tracer")
ADAPTERS: Kind[Adapter[Any, Any]] = Kind("adapters", "agentlightning.adapter.base:Adapter")
ALGORITHMS: Kind[Algorithm] = Kind("algorithms", "agentlightning.algorithm.base:Algorithm")
EXECUTION_STRATEGIES: Kind[ExecutionStrategy] = Kind(
    "execution_strategies", "agentlightning.execution.base:ExecutionStrategy"
)
EXPORTS: Kind[Any] = Kind("exports")
COMMANDS: Kind[Callable[..., Any]] = Kind("commands")
WEB_APPS: Kind[Any] = Kind("web_apps")

KIND_SPECS: Dict[str, Kind[Any]] = {
    kind.name: kind
    for kind in (
        STORES,
        STORE_SERVERS,
        TRACERS,
        ADAPTERS,
        ALGORITHMS,
        EXECUTION_STRATEGIES,
        EXPORTS,
        COMMANDS,
        WEB_APPS,
    )
}
"""Every component kind by name: its hook and what its factories must build."""

KINDS: Tuple[str, ...] = tuple(KIND_SPECS)

CORE_DISTRIBUTION = "agentlightning-core"

INSTALL_HINT = "install the plugin that provides it (`agl plugins` lists the installed plugins and what they register)"
"""Core does not know which distribution provides what, so a missing component gets this generic hint."""


def _env_list(name: str) -> Optional[List[str]]:
    value = os.environ.get(name)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@attrs.define(kw_only=True)
class PluginFailure:
    """A plugin that did not load, and why."""

    name: str
    value: str
    distribution: Optional[str]
    version: Optional[str]
    phase: str  # "compat" | "import" | "register"
    error: str
    traceback: str = ""

    def describe(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "unknown distribution"
        return f"plugin {self.name!r} ({dist}) failed to {self._verb()}: {self.error}"

    def _verb(self) -> str:
        return {"compat": "load (incompatible)", "import": "import", "register": "register"}.get(self.phase, "load")


@attrs.define(kw_only=True)
class PluginInfo:
    """A loaded plugin and what it registered."""

    name: str
    distribution: Optional[str]
    version: Optional[str]
    registrations: Dict[str, List[str]] = attrs.field(factory=dict)


def _core_version() -> str:
    from agentlightning import __version__

    return __version__


def _core_requirement_conflict(dist: Any) -> Optional[str]:
    """A message when the plugin's declared core range excludes this core; read from metadata, nothing imported."""
    if dist is None:
        return None
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import Version

    for text in dist.requires or []:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.name.lower().replace("_", "-") != CORE_DISTRIBUTION or req.marker is not None:
            continue
        core = _core_version()
        if req.specifier and not req.specifier.contains(Version(core), prereleases=True):
            return f"requires {CORE_DISTRIBUTION}{req.specifier}, but {core} is installed"
    return None


class PluginManager:
    """Owns a pluggy manager, loads plugins lazily and keeps one :class:`Registry` per component kind."""

    def __init__(self, *, autoload: Optional[bool] = None, strict: Optional[bool] = None) -> None:
        self._pm = pluggy.PluginManager(PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self.autoload = (not _env_flag("AGL_DISABLE_PLUGIN_AUTOLOAD")) if autoload is None else autoload
        self.strict = _env_flag("AGL_STRICT_PLUGINS") if strict is None else strict
        self.failures: List[PluginFailure] = []
        self._dists: Dict[str, Tuple[Optional[str], Optional[str]]] = {}
        self._loaded = False
        self._registries: Optional[Dict[str, Registry]] = None
        self._lock = threading.RLock()
        import importlib

        builtin = importlib.import_module("agentlightning._builtin")
        self._pm.register(builtin, name="agentlightning")
        self._dists["agentlightning"] = (CORE_DISTRIBUTION, _core_version())
        if _env_flag("AGL_TRACE_PLUGINS"):
            self._pm.trace.root.setwriter(print)
            self._pm.enable_tracing()

    # -- loading ------------------------------------------------------------------------------------------------

    def load(self) -> None:
        """Load the entry points once. Idempotent and thread-safe."""
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            if not self.autoload:
                return
            self._load_entry_points()

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        allow = _env_list("AGL_LOAD_PLUGINS")
        deny = set(_env_list("AGL_DISABLE_PLUGINS") or [])
        seen = set()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)):
            if (ep.name, ep.value) in seen:  # the same dist-info seen twice (lib and lib64)
                continue
            seen.add((ep.name, ep.value))
            if ep.name in deny or (allow is not None and ep.name not in allow):
                self._pm.set_blocked(ep.name)
                continue
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            dist_version = dist.version if dist is not None else None
            conflict = _core_requirement_conflict(dist)
            if conflict:
                self._fail(ep.name, ep.value, dist_name, dist_version, "compat", conflict, "")
                continue
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - a plugin that fails to import is reported, not fatal
                self._fail(ep.name, ep.value, dist_name, dist_version, "import", _one_line(exc), traceback.format_exc())
                continue
            self._add_plugin(module, ep.name, dist_name, dist_version, ep.value)

    def register(self, plugin: Any, name: Optional[str] = None, *, distribution: Optional[str] = None) -> str:
        """Register a hooks module or object by hand (tests, notebooks). Returns the plugin's name."""
        with self._lock:
            plugin_name = name or getattr(plugin, "__name__", None) or repr(plugin)
            self._add_plugin(plugin, plugin_name, distribution, None, plugin_name)
            return plugin_name

    def unregister(self, name: str) -> None:
        with self._lock:
            plugin = self._pm.get_plugin(name)
            if plugin is not None:
                self._pm.unregister(plugin, name=name)
            self._dists.pop(name, None)
            if self._registries is not None:
                for registry in self._registries.values():
                    registry.unregister_plugin(name)

    def _add_plugin(self, module: Any, name: str, dist: Optional[str], version: Optional[str], value: str) -> None:
        """Register with pluggy, which validates the hook implementations (names and arguments) against the specs."""
        try:
            self._pm.register(module, name=name)
            self._pm.check_pending()
        except (ValueError, pluggy.PluginValidationError) as exc:
            if self._pm.get_plugin(name) is not None:
                self._pm.unregister(name=name)
            self._fail(name, value, dist, version, "register", _one_line(exc), traceback.format_exc())
            return
        self._dists[name] = (dist, version)
        if self._registries is not None:
            self._collect_from(name, self._registries)

    def _fail(
        self, name: str, value: str, dist: Optional[str], version: Optional[str], phase: str, error: str, tb: str
    ) -> None:
        failure = PluginFailure(
            name=name, value=value, distribution=dist, version=version, phase=phase, error=error, traceback=tb
        )
        self.failures.append(failure)
        if self.strict:
            raise PluginLoadError(failure.describe())
        warnings.warn(failure.describe(), AgentLightningPluginWarning, stacklevel=3)

    # -- registries ---------------------------------------------------------------------------------------------

    def _collect_from(self, plugin_name: str, registries: Dict[str, Registry[Any]]) -> None:
        """Call one plugin's registration hooks through pluggy; a hook that raises marks that plugin failed and
        undoes its registrations (the other plugins keep theirs)."""
        plugin = self._pm.get_plugin(plugin_name)
        others = [p for n, p in self._pm.list_name_plugin() if n != plugin_name and p is not None and p is not plugin]
        try:
            for kind in KIND_SPECS.values():
                caller = self._pm.subset_hook_caller(kind.hook, remove_plugins=others)
                caller(register=self._make_register(kind, plugin_name, registries[kind.name]))
        except Exception as exc:  # noqa: BLE001 - a failing hook is reported and its registrations undone
            for registry in registries.values():
                registry.unregister_plugin(plugin_name)
            dist, version = self._dists.get(plugin_name, (None, None))
            if plugin is not None:
                self._pm.unregister(name=plugin_name)
            self._fail(plugin_name, plugin_name, dist, version, "register", _one_line(exc), traceback.format_exc())

    def _make_register(self, kind: Kind[Any], plugin_name: str, registry: Registry[Any]) -> Callable[..., None]:
        def register(
            name: str,
            factory: Factory,
            *,
            description: str = "",
            aliases: Iterable[str] = (),
            url_schemes: Iterable[str] = (),
        ) -> None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"{kind.label} registration needs a non-empty string name, got {name!r}")
            if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
                raise TypeError(
                    f"{kind.label} {name!r}: factory must be callable or 'module:attribute', got {factory!r}"
                )
            if isinstance(aliases, str) or isinstance(url_schemes, str):
                raise TypeError(f"{kind.label} {name!r}: aliases and url_schemes are sequences of names, not a string")
            schemes = tuple(url_schemes)
            if schemes and kind is not STORES:
                raise ValueError(f"{kind.label} {name!r}: url_schemes are for stores only")
            names = (name, *aliases)
            if kind is EXPORTS:
                _check_not_core(names, plugin_name)
            registration: Registration[Any] = Registration(
                kind=kind.name,
                name=name,
                factory=factory,
                plugin=plugin_name,
                description=description,
                aliases=names[1:],
                url_schemes=schemes,
                builds=kind.builds,
            )
            if isinstance(factory, type):  # already imported: check it now (strings are checked when loaded)
                registration.load()
            registry.register(registration)

        return register

    def registries(self) -> Dict[str, Registry[Any]]:
        with self._lock:
            self.load()
            if self._registries is None:
                registries: Dict[str, Registry[Any]] = {kind: Registry(kind) for kind in KINDS}
                for name, module in self._pm.list_name_plugin():
                    if module is not None:
                        self._collect_from(name, registries)
                self._registries = registries
            return self._registries

    @overload
    def registry(self, kind: Kind[T]) -> Registry[T]: ...
    @overload
    def registry(self, kind: str) -> Registry[Any]: ...
    def registry(self, kind: Union[str, Kind[Any]]) -> Registry[Any]:
        """The registry of one kind (``"stores"`` or :data:`STORES`, ...)."""
        name = _kind_name(kind)
        if name not in KIND_SPECS:
            raise ValueError(f"unknown component kind {name!r}; kinds are {', '.join(KINDS)}")
        return self.registries()[name]

    @overload
    def get(self, kind: Kind[T], name: str) -> Registration[T]: ...
    @overload
    def get(self, kind: str, name: str) -> Registration[Any]: ...
    def get(self, kind: Union[str, Kind[Any]], name: str) -> Registration[Any]:
        """The registration of ``name``; :class:`UnknownComponentError` lists what is installed otherwise."""
        reg = self.registry(_kind_name(kind)).get(name)
        if reg is None:
            raise UnknownComponentError(self._unknown_message(_kind_name(kind), name))
        return reg

    @overload
    def create(self, kind: Kind[T], name: str, /, *args: Any, **kwargs: Any) -> T: ...
    @overload
    def create(self, kind: str, name: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def create(self, kind: Union[str, Kind[Any]], name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Build the component registered as ``name``, checked to be of the kind's type."""
        return self.get(_kind_name(kind), name).create(*args, **kwargs)

    @overload
    def get_scheme(self, kind: Kind[T], scheme: str) -> Registration[T]: ...
    @overload
    def get_scheme(self, kind: str, scheme: str) -> Registration[Any]: ...
    def get_scheme(self, kind: Union[str, Kind[Any]], scheme: str) -> Registration[Any]:
        """The registration of a URL scheme (stores)."""
        reg = self.registry(_kind_name(kind)).get_scheme(scheme)
        if reg is None:
            raise UnknownComponentError(self._unknown_message(_kind_name(kind), scheme, scheme=True))
        return reg

    def _unknown_message(self, kind: str, name: str, *, scheme: bool = False) -> str:
        registry = self.registry(kind)
        what = KIND_SPECS[kind].label
        installed = registry.schemes() if scheme else registry.names()
        label = f"no {what} URL scheme {name!r}" if scheme else f"no {what} named {name!r}"
        msg = f"{label}; installed: {', '.join(installed) or 'none'}. To use it, {INSTALL_HINT}"
        if self.failures:
            msg += ". Plugins that failed to load: " + "; ".join(f.describe() for f in self.failures)
        return msg

    # -- listing ------------------------------------------------------------------------------------------------

    def plugins(self) -> List[PluginInfo]:
        """Every loaded plugin with its distribution, version and registrations."""
        registries = self.registries()
        infos: Dict[str, PluginInfo] = {}
        for name, _ in self._pm.list_name_plugin():
            dist, version = self._dists.get(name, (None, None))
            infos[name] = PluginInfo(name=name, distribution=dist, version=version)
        for kind, registry in registries.items():
            for reg in registry:
                info = infos.get(reg.plugin)
                if info is not None:
                    info.registrations.setdefault(kind, []).append(reg.name)
        return sorted(infos.values(), key=lambda i: (i.name != "agentlightning", i.name))

    @property
    def hook(self) -> Any:
        return self._pm.hook


def _one_line(exc: BaseException) -> str:
    """The error on one line: the first line, or all of it for pluggy's validation errors (which say what is wrong
    on their later lines)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = " ".join(lines if isinstance(exc, pluggy.PluginValidationError) else lines[:1])
    return f"{type(exc).__name__}: {text}".rstrip(": ")


def _kind_name(kind: Union[str, Kind[Any]]) -> str:
    return kind.name if isinstance(kind, Kind) else kind


def _check_not_core(names: Tuple[str, ...], plugin_name: str) -> None:
    """An export may not shadow a name core defines (it would never be reached, or would change core's API)."""
    from agentlightning import _core_names

    core = _core_names()
    for name in names:
        if name in core:
            raise DuplicatePluginNameError(
                f"export {name!r} is a core name (agentlightning.{name}, {CORE_DISTRIBUTION}) and is also exported "
                f"by plugin {plugin_name!r}; the plugin must export it under another name"
            )


_manager: Optional[PluginManager] = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager (created on first use)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = PluginManager()
        return _manager


def reset_plugin_manager(manager: Optional[PluginManager] = None) -> Optional[PluginManager]:
    """Replace the process-wide manager (tests); returns the previous one."""
    global _manager
    with _manager_lock:
        previous, _manager = _manager, manager
        return previous
