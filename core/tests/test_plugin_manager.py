"""The plugin manager loads real entry points lazily and survives broken plugins."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Iterator

import pytest
from agentlightning.plugins import (
    ALGORITHMS,
    STORES,
    AgentLightningPluginWarning,
    ComponentTypeError,
    PluginLoadError,
    PluginManager,
    Register,
    UnknownComponentError,
    hookimpl,
)
from fake_dists import make_dist

GOOD = """
from agentlightning.plugins import hookimpl

@hookimpl
def agentlightning_register_stores(register):
    register("goodstore", "good_plugin.impl:make", url_schemes=("good",), aliases=("gs",))

@hookimpl
def agentlightning_register_exports(register):
    register("GoodThing", "good_plugin.impl:GoodThing")
"""

GOOD_IMPL = """
from agentlightning.store.base import LightningStore

class GoodThing:
    pass

class Made(tuple):
    pass

LightningStore.register(Made)  # a virtual subclass passes the store kind check

def make(**kwargs):
    return Made(("made", kwargs))
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder for fake distributions; each test adds its own with ``install``."""
    for var in ("AGL_DISABLE_PLUGIN_AUTOLOAD", "AGL_LOAD_PLUGINS", "AGL_DISABLE_PLUGINS", "AGL_STRICT_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    # only the fake distributions of these tests, whatever else is installed in the environment
    monkeypatch.setenv("AGL_LOAD_PLUGINS", "good,bad,dup,old,typo,args,named")
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name in [m for m, mod in sys.modules.items() if str(tmp_path) in (getattr(mod, "__file__", None) or "")]:
        del sys.modules[name]


def add_good(site: Path) -> None:
    make_dist(
        site / "good",
        "agentlightning-good",
        version="2.5",
        entry_points={"good": "good_plugin.hooks"},
        modules={"good_plugin.__init__": "", "good_plugin.hooks": GOOD, "good_plugin.impl": GOOD_IMPL},
    )
    sys.path.insert(0, str(site / "good"))


def add_hooks(site: Path, name: str, source: str) -> None:
    """Install ``agentlightning-<name>`` 1.0, whose entry point ``name`` is the module ``<name>_hooks`` (``source``)."""
    make_dist(
        site / name, f"agentlightning-{name}", entry_points={name: f"{name}_hooks"}, modules={f"{name}_hooks": source}
    )
    sys.path.insert(0, str(site / name))


def manager() -> PluginManager:
    return PluginManager(autoload=True, strict=False)


def test_entry_points_are_read_lazily_and_registrations_resolve(site: Path) -> None:
    add_good(site)
    pm = manager()
    assert "good_plugin.hooks" not in sys.modules  # nothing loaded at construction
    reg = pm.get("stores", "goodstore")
    assert reg.plugin == "good"
    assert "good_plugin.impl" not in sys.modules  # factories given as strings are imported on first use
    assert pm.create("stores", "gs", x=1) == ("made", {"x": 1})
    assert pm.get_scheme("stores", "good").name == "goodstore"
    info = {p.name: p for p in pm.plugins()}["good"]
    assert (info.distribution, info.version) == ("agentlightning-good", "2.5")
    assert info.registrations == {"stores": ["goodstore"], "exports": ["GoodThing"]}


def test_broken_plugin_is_recorded_and_others_still_load(site: Path) -> None:
    add_good(site)
    make_dist(
        site / "bad",
        "agentlightning-bad",
        entry_points={"bad": "bad_plugin_hooks"},
        modules={"bad_plugin_hooks": "raise ImportError('needs libfoo')"},
    )
    sys.path.insert(0, str(site / "bad"))
    pm = manager()
    with pytest.warns(AgentLightningPluginWarning, match=r"plugin 'bad' \(agentlightning-bad 1.0\) failed to import"):
        names = pm.registry("stores").names()
    assert names == ["goodstore"]
    [failure] = pm.failures
    assert failure.phase == "import" and "needs libfoo" in failure.error and "Traceback" in failure.traceback


def test_strict_mode_raises(site: Path) -> None:
    make_dist(site / "bad", "agentlightning-bad", entry_points={"bad": "nope_missing_module"}, modules={})
    sys.path.insert(0, str(site / "bad"))
    with pytest.raises(PluginLoadError, match="nope_missing_module"):
        PluginManager(autoload=True, strict=True).load()


def test_duplicate_names_name_both_plugins(site: Path, recwarn: pytest.WarningsRecorder) -> None:
    add_good(site)
    make_dist(
        site / "dup",
        "agentlightning-dup",
        entry_points={"dup": "dup_plugin_hooks"},
        modules={"dup_plugin_hooks": GOOD.replace("good_plugin.impl", "dup_impl")},
    )
    sys.path.insert(0, str(site / "dup"))
    pm = manager()
    pm.registries()
    [failure] = pm.failures
    assert "'goodstore' is registered by both plugin 'dup' and plugin 'good'" in failure.error or (
        "'goodstore' is registered by both plugin 'good' and plugin 'dup'" in failure.error
    )
    # the plugin that lost is removed entirely, the other keeps working
    assert pm.get("stores", "goodstore").plugin in {"good", "dup"}
    assert len({r.plugin for r in pm.registry("stores")}) == 1


def test_incompatible_core_range_is_refused_without_import(site: Path) -> None:
    make_dist(
        site / "old",
        "agentlightning-old",
        entry_points={"old": "old_plugin_hooks"},
        modules={"old_plugin_hooks": "raise SystemExit('must not be imported')"},
        requires=["agentlightning-core<0.1"],
    )
    sys.path.insert(0, str(site / "old"))
    pm = manager()
    with pytest.warns(AgentLightningPluginWarning, match="requires agentlightning-core<0.1, but 0.4.0 is installed"):
        pm.load()
    assert pm.failures[0].phase == "compat"


def test_unknown_hook_is_a_register_failure_naming_plugin_and_hook(site: Path) -> None:
    add_hooks(
        site,
        "typo",
        """
        from agentlightning.plugins import hookimpl
        @hookimpl
        def agentlightning_register_storez(register):
            pass
        """,
    )
    pm = manager()
    with pytest.warns(
        AgentLightningPluginWarning, match=r"plugin 'typo' \(agentlightning-typo 1.0\) failed to register"
    ):
        pm.load()
    [failure] = pm.failures
    assert failure.phase == "register" and "PluginValidationError" in failure.error
    assert "unknown hook 'agentlightning_register_storez'" in failure.error


def test_raising_registration_hook_is_isolated(site: Path, plugin_manager: PluginManager) -> None:
    class Broken:
        @hookimpl
        def agentlightning_register_stores(self, register):  # type: ignore[no-untyped-def]
            register("half", "x:y")
            raise RuntimeError("boom")

    class Fine:
        @hookimpl
        def agentlightning_register_stores(self, register):  # type: ignore[no-untyped-def]
            register("fine", "x:y")

    plugin_manager.register(Broken(), "broken")
    plugin_manager.register(Fine(), "fine")
    with pytest.warns(AgentLightningPluginWarning, match=r"plugin 'broken' .*failed to register: RuntimeError: boom"):
        assert plugin_manager.registry("stores").names() == ["fine"]
    [failure] = plugin_manager.failures
    assert failure.name == "broken" and "broken" not in {p.name for p in plugin_manager.plugins()}


def test_env_allow_and_deny_lists(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add_good(site)
    monkeypatch.setenv("AGL_DISABLE_PLUGINS", "good,bad")
    assert "goodstore" not in manager().registry("stores")
    monkeypatch.delenv("AGL_DISABLE_PLUGINS")
    monkeypatch.setenv("AGL_LOAD_PLUGINS", "")
    assert "goodstore" not in manager().registry("stores")
    monkeypatch.setenv("AGL_LOAD_PLUGINS", "good")
    assert "goodstore" in manager().registry("stores")
    monkeypatch.setenv("AGL_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "goodstore" not in PluginManager().registry("stores")


def test_unknown_component_lists_installed_and_hints_without_naming_packages(plugin_manager: PluginManager) -> None:
    with pytest.raises(UnknownComponentError, match=r"no store named 'sqlite'; installed: ") as caught:
        plugin_manager.get("stores", "sqlite")
    assert "install the plugin that provides it" in str(caught.value) and "agl plugins" in str(caught.value)
    assert "agentlightning-sqlite" not in str(caught.value)  # core does not know its plugins
    with pytest.raises(UnknownComponentError, match="no store URL scheme 'nosuch'"):
        plugin_manager.get_scheme("stores", "nosuch")
    with pytest.raises(ValueError, match="unknown component kind"):
        plugin_manager.registry("widgets")


def test_registration_arguments_are_validated(plugin_manager: PluginManager) -> None:
    class BadName:
        @hookimpl
        def agentlightning_register_tracers(self, register):  # type: ignore[no-untyped-def]
            register("", "a:b")

    class BadFactory:
        @hookimpl
        def agentlightning_register_tracers(self, register):  # type: ignore[no-untyped-def]
            register("t", "not-a-target")

    plugin_manager.register(BadName(), "badname")
    plugin_manager.register(BadFactory(), "badfactory")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not {"", "t"} & set(plugin_manager.registry("tracers").names())  # only core's own tracers
    messages = " ".join(str(w.message) for w in caught)
    assert "non-empty string name" in messages and "module:attribute" in messages


def test_lazy_top_level_exports(plugin_manager: PluginManager) -> None:
    import agentlightning

    class Exports:
        @hookimpl
        def agentlightning_register_exports(self, register):  # type: ignore[no-untyped-def]
            register("ExampleExportForTest", "collections:OrderedDict")

    plugin_manager.register(Exports(), "exports-test")
    import collections

    assert agentlightning.ExampleExportForTest is collections.OrderedDict
    with pytest.raises(AttributeError, match=r"no attribute 'APO' \(no export named 'APO'.*install the plugin"):
        agentlightning.APO  # noqa: B018
    assert not hasattr(agentlightning, "DefinitelyNotAName")


# -- pluggy calls the hooks ------------------------------------------------------------------------------------------

NAMED = """
from agentlightning.plugins import hookimpl

@hookimpl(specname="agentlightning_register_stores")
def stores(register):
    register("named", "collections:OrderedDict")

def agentlightning_register_exports(register):  # no @hookimpl: never called
    raise AssertionError("an unmarked function was called")
"""


def test_specname_implementations_are_called_and_unmarked_functions_are_not(site: Path) -> None:
    add_hooks(site, "named", NAMED)
    pm = manager()
    assert pm.get("stores", "named").plugin == "named"
    assert pm.failures == []
    assert {p.name: p.registrations for p in pm.plugins()}["named"] == {"stores": ["named"]}


def test_wrong_argument_names_are_a_validation_error_naming_the_plugin(site: Path) -> None:
    add_hooks(
        site,
        "args",
        """
        from agentlightning.plugins import hookimpl
        @hookimpl
        def agentlightning_register_stores(registrar):
            registrar("never", "x:y")
        """,
    )
    add_good(site)
    pm = manager()
    with pytest.warns(
        AgentLightningPluginWarning, match=r"plugin 'args' \(agentlightning-args 1.0\) failed to register"
    ):
        names = pm.registry("stores").names()
    assert names == ["goodstore"]  # the other plugin still loads
    [failure] = pm.failures
    assert "agentlightning_register_stores" in failure.error and "registrar" in failure.error


def test_hand_registered_plugin_with_an_unknown_hook_fails_with_its_name(plugin_manager: PluginManager) -> None:
    class Typo:
        @hookimpl
        def agentlightning_register_tracer(self, register: Register) -> None:
            register("t", "x:y")

    with pytest.warns(AgentLightningPluginWarning, match=r"plugin 'typo-object' .*unknown hook"):
        plugin_manager.register(Typo(), "typo-object")
    assert "typo-object" not in {p.name for p in plugin_manager.plugins()}


# -- kind checks -----------------------------------------------------------------------------------------------------


class NotAStore:
    pass


def test_factories_must_build_their_kind_and_errors_name_the_plugin(plugin_manager: PluginManager) -> None:
    from agentlightning.algorithm.base import Algorithm

    class Algo(Algorithm):
        pass

    class Mixed:
        @hookimpl
        def agentlightning_register_stores(self, register: Register) -> None:
            register("dict-store", lambda: {})
            register("class-store", f"{__name__}:NotAStore")

        @hookimpl
        def agentlightning_register_algorithms(self, register: Register) -> None:
            register("algo", Algo)

    plugin_manager.register(Mixed(), "mixed")
    with pytest.raises(
        ComponentTypeError, match=r"store 'dict-store' registered by plugin 'mixed' built a builtins.dict"
    ):
        plugin_manager.create(STORES, "dict-store")
    with pytest.raises(
        ComponentTypeError,
        match=r"store 'class-store' registered by plugin 'mixed' is the class .*NotAStore, which is not a Lightning",
    ):
        plugin_manager.get("stores", "class-store").load()
    assert isinstance(plugin_manager.create(ALGORITHMS, "algo"), Algo)

    class WrongClass:
        @hookimpl
        def agentlightning_register_tracers(self, register: Register) -> None:
            register("dict-tracer", dict)  # a class is checked when registered: the plugin fails to load

    with pytest.warns(
        AgentLightningPluginWarning, match=r"plugin 'wrong-class' .*ComponentTypeError: tracer 'dict-tracer'"
    ):
        plugin_manager.register(WrongClass(), "wrong-class")
    assert "dict-tracer" not in plugin_manager.registry("tracers")
    assert plugin_manager.registry(ALGORITHMS).get("algo") is plugin_manager.get("algorithms", "algo")


def test_exports_may_not_shadow_core_names_nor_each_other(plugin_manager: PluginManager) -> None:
    import agentlightning

    class Shadow:
        @hookimpl
        def agentlightning_register_exports(self, register: Register) -> None:
            register("Trainer", "collections:OrderedDict")

    class First:
        @hookimpl
        def agentlightning_register_exports(self, register: Register) -> None:
            register("SharedName", "collections:OrderedDict")

    class Second:
        @hookimpl
        def agentlightning_register_exports(self, register: Register) -> None:
            register("SharedName", "collections:Counter")

    for plugin, name in ((Shadow(), "shadow"), (First(), "first"), (Second(), "second")):
        plugin_manager.register(plugin, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exports = plugin_manager.registry("exports")
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert "export 'SharedName' is registered by both plugin 'first' and plugin 'second'" in messages[0]
    assert "plugin 'shadow'" in messages[1] and "'Trainer' is a core name (agentlightning.Trainer" in messages[1]
    assert exports.names() == ["SharedName"]
    import collections

    assert agentlightning.SharedName is collections.OrderedDict
    assert agentlightning.Trainer is not collections.OrderedDict


def test_every_kind_has_a_hook_spec_and_every_spec_a_kind() -> None:
    from agentlightning.plugins import KIND_SPECS, hookspecs

    specs = {name for name in vars(hookspecs) if name.startswith("agentlightning_register_")}
    assert specs == {kind.hook for kind in KIND_SPECS.values()}
    assert "agentlightning_register_emitters" not in specs  # nothing ever used it
    assert KIND_SPECS["execution_strategies"].label == "execution strategy"


# -- web apps --------------------------------------------------------------------------------------------------------


def test_web_apps_are_registered_by_name_and_announced_for_a_server_that_serves_them(
    plugin_manager: PluginManager, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentlightning.execution.store_link import announce_web_apps
    from agentlightning.plugins import WEB_APPS

    def board() -> object:
        return "an ASGI app"

    class Board:
        @hookimpl
        def agentlightning_register_web_apps(self, register: Register) -> None:
            register("board", board, description="a page")

    plugin_manager.register(Board(), "board-plugin")
    registration = plugin_manager.get(WEB_APPS, "board")
    assert (registration.plugin, registration.create()) == ("board-plugin", "an ASGI app")

    class Server:  # a store server that serves the web apps lists them; one that does not, has no such attribute
        web_app_urls = {"board": "http://127.0.0.1:9/board/"}

    announce_web_apps(Server())  # type: ignore[arg-type]
    announce_web_apps(object())  # type: ignore[arg-type]
    assert capsys.readouterr().out == "board at http://127.0.0.1:9/board/\n"
