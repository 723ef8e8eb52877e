"""The plugin manager: finds plugins through entry points, lazily, and records every failure.

Entry points are read on the first lookup, never at ``import agentlightning``. Each plugin loads on its own, so a
broken one is recorded (distribution, version, phase, error) and the rest still load.

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
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import attrs
import pluggy

from . import ENTRY_POINT_GROUP, PROJECT_NAME, hookspecs
from .errors import AgentLightningPluginWarning, PluginLoadError, UnknownComponentError
from .registry import Factory, Registration, Registry

KINDS: Tuple[str, ...] = (
    "stores",
    "tracers",
    "emitters",
    "adapters",
    "algorithms",
    "execution_strategies",
    "exports",
    "commands",
)

CORE_DISTRIBUTION = "agentlightning-core"

# Which first-party distribution provides a component that is not installed, for error messages.
KNOWN_PROVIDERS: Dict[Tuple[str, str], str] = {
    ("stores", "memory"): "agentlightning-memory",
    ("stores", "sqlite"): "agentlightning-sqlite",
    ("stores", "http"): "agentlightning-server",
    ("stores", "https"): "agentlightning-server",
    ("tracers", "agentops"): "agentlightning-agentops",
    ("algorithms", "apo"): "agentlightning-apo",
    ("algorithms", "verl"): "agentlightning-verl",
    ("algorithms", "grpo"): "agentlightning-torch",
    ("exports", "InMemoryLightningStore"): "agentlightning-memory",
    ("exports", "SqliteLightningStore"): "agentlightning-sqlite",
    ("exports", "LightningStoreClient"): "agentlightning-server",
    ("exports", "LightningStoreServer"): "agentlightning-server",
    ("exports", "APO"): "agentlightning-apo",
    ("exports", "VERL"): "agentlightning-verl",
    ("exports", "LLMProxy"): "agentlightning-litellm",
    ("exports", "AgentOpsTracer"): "agentlightning-agentops",
}


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
            self._collect_from(name, module, self._registries)

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

    def _collect_from(self, plugin_name: str, module: Any, registries: Dict[str, Registry]) -> None:
        """Call one plugin's registration hooks; a hook that raises marks that plugin failed and undoes its part."""
        try:
            for kind in KINDS:
                hook_name = f"agentlightning_register_{kind}"
                func = getattr(module, hook_name, None)
                if func is None:
                    continue
                func(register=self._make_register(kind, plugin_name, registries[kind]))
        except Exception as exc:  # noqa: BLE001 - a failing hook is reported and its registrations undone
            for registry in registries.values():
                registry.unregister_plugin(plugin_name)
            dist, version = self._dists.get(plugin_name, (None, None))
            if self._pm.get_plugin(plugin_name) is not None:
                self._pm.unregister(name=plugin_name)
            self._fail(plugin_name, plugin_name, dist, version, "register", _one_line(exc), traceback.format_exc())

    def _make_register(self, kind: str, plugin_name: str, registry: Registry) -> Callable[..., None]:
        def register(
            name: str,
            factory: Factory,
            *,
            description: str = "",
            aliases: Iterable[str] = (),
            url_schemes: Iterable[str] = (),
        ) -> None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"{kind} registration needs a non-empty string name, got {name!r}")
            if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
                raise TypeError(f"{kind} {name!r}: factory must be callable or 'module:attribute', got {factory!r}")
            registry.register(
                Registration(
                    kind=kind,
                    name=name,
                    factory=factory,
                    plugin=plugin_name,
                    description=description,
                    aliases=tuple(aliases),
                    url_schemes=tuple(url_schemes),
                )
            )

        return register

    def registries(self) -> Dict[str, Registry]:
        with self._lock:
            self.load()
            if self._registries is None:
                registries = {kind: Registry(kind) for kind in KINDS}
                for name, module in self._pm.list_name_plugin():
                    if module is not None:
                        self._collect_from(name, module, registries)
                self._registries = registries
            return self._registries

    def registry(self, kind: str) -> Registry:
        if kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}; kinds are {', '.join(KINDS)}")
        return self.registries()[kind]

    def get(self, kind: str, name: str) -> Registration:
        """The registration of ``name``; :class:`UnknownComponentError` lists what is installed otherwise."""
        reg = self.registry(kind).get(name)
        if reg is None:
            raise UnknownComponentError(self._unknown_message(kind, name))
        return reg

    def create(self, kind: str, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Build the component registered as ``name``."""
        return self.get(kind, name).create(*args, **kwargs)

    def get_scheme(self, kind: str, scheme: str) -> Registration:
        reg = self.registry(kind).get_scheme(scheme)
        if reg is None:
            raise UnknownComponentError(self._unknown_message(kind, scheme, scheme=True))
        return reg

    def _unknown_message(self, kind: str, name: str, *, scheme: bool = False) -> str:
        registry = self.registry(kind)
        what = kind[:-1].replace("_", " ")
        installed = registry.schemes() if scheme else registry.names()
        label = f"no {what} URL scheme {name!r}" if scheme else f"no {what} named {name!r}"
        msg = f"{label}; installed: {', '.join(installed) or 'none'}"
        provider = KNOWN_PROVIDERS.get((kind, name))
        if provider:
            msg += f". It is provided by {provider}: pip install {provider}"
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
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


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
