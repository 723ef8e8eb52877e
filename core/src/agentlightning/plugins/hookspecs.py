"""Hook specifications for agentlightning plugins: the contract between core and a plugin.

Plugins implement these with ``@agentlightning.plugins.hookimpl`` in a module named by an entry point of the
``agentlightning`` group; pluggy calls them and validates them against these specs (hook name and argument names).
A function without ``@hookimpl`` is never called, even if its name matches; ``@hookimpl(specname=...)`` lets a
function of any name implement a hook.

Registration hooks run once, the first time a component is looked up. They must be cheap: no I/O and no heavy
imports (name factories as ``"module:attribute"`` strings, imported when the component is first built). Each
receives ``register`` (:class:`~agentlightning.plugins.Register`)::

    register(name, factory, *, description="", aliases=(), url_schemes=())

and returns nothing. Names (and aliases, URL schemes) are unique across installed plugins: a second plugin that
registers a taken name fails to load, and the error names both plugins. What a factory must build is checked when
it is built: a factory that returns the wrong kind of object raises :class:`~agentlightning.plugins.ComponentTypeError`
naming the plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import hookspec

if TYPE_CHECKING:
    from .registry import Register


@hookspec
def agentlightning_register_stores(register: Register) -> None:
    """Register :class:`~agentlightning.LightningStore` backends.

    The factory is called with the caller's keyword arguments (``open_store("name", **kwargs)``,
    ``create("stores", "name", **kwargs)``) and must return a ``LightningStore``. ``url_schemes=("sqlite",)`` makes
    URLs such as ``sqlite:///run.db`` resolve to it; the factory then also receives ``url=`` with the whole URL.

    Example: ``register("sqlite", "agentlightning_sqlite.store:SqliteLightningStore", url_schemes=("sqlite",))``.

    A store that other processes can open by URL says so with ``capabilities["zero_copy"]`` and
    :meth:`~agentlightning.LightningStore.reopen_url`.

    Added in 0.4.
    """


@hookspec
def agentlightning_register_store_servers(register: Register) -> None:
    """Register store servers: what serves a store that is not shared across processes to runner processes.

    The factory is called as ``factory(store, host=..., port=...)`` (``port=0``: pick a free port) and must return a
    :class:`~agentlightning.execution.StoreServer`: ``start()``, ``stop()``, and ``endpoint``, a URL that
    ``open_store`` resolves in another process. The multi-process execution strategy looks up ``"http"``.

    Example: ``register("http", "agentlightning_server.server:LightningStoreServer")``.

    Added in 0.4.
    """


@hookspec
def agentlightning_register_tracers(register: Register) -> None:
    """Register tracers (``"otel"``, ``"agentops"``, ...).

    The factory is called with keyword arguments (the trainer's ``tracer={"type": name, ...}``) and must return a
    :class:`~agentlightning.Tracer`.

    Added in 0.4.
    """


@hookspec
def agentlightning_register_adapters(register: Register) -> None:
    """Register trace adapters (``"triplet"``, ``"messages"``, ...).

    The factory is called with keyword arguments and must return an :class:`~agentlightning.Adapter`.

    Added in 0.4.
    """


@hookspec
def agentlightning_register_algorithms(register: Register) -> None:
    """Register training algorithms (``"baseline"``, ``"apo"``, ``"verl"``, ...).

    The factory is called with keyword arguments and must return an :class:`~agentlightning.Algorithm`.

    Added in 0.4.
    """


@hookspec
def agentlightning_register_execution_strategies(register: Register) -> None:
    """Register execution strategies (``"inprocess"``, ``"multiprocess"``, ...).

    The factory is called with keyword arguments and must return an :class:`~agentlightning.ExecutionStrategy`.

    Added in 0.4.
    """


@hookspec
def agentlightning_register_exports(register: Register) -> None:
    """Register top-level names that ``agentlightning`` resolves lazily.

    ``factory`` is the object itself (any object; usually a ``"module:attribute"`` string), returned as is by
    ``agentlightning.<name>``. This is how ``agl.InMemoryLightningStore`` or ``agl.APO`` work without core importing
    any plugin. A name that is already a core name, or that another plugin exports, is an error naming both, and the
    plugin fails to load.

    Example: ``register("APO", "agentlightning_apo:APO")``.

    Added in 0.4.
    """


@hookspec
def agentlightning_register_commands(register: Register) -> None:
    """Register ``agl`` sub-commands.

    ``factory`` is called with the sub-command's new ``argparse.ArgumentParser``; it must add its arguments and call
    ``parser.set_defaults(func=handler)``; ``handler(args) -> int`` runs the command and returns its exit status.

    Added in 0.4.
    """


@hookspec
def agentlightning_register_web_apps(register: Register) -> None:
    """Register web apps that every store server serves beside its REST API (a dashboard, say).

    ``factory()`` (no arguments) must return an ASGI application. A store server answers ``/<name>/...`` with it and,
    when exactly one web app is installed, redirects ``GET /`` to it; the app gets the whole path with ``root_path``
    set to ``/<name>`` (the ASGI convention) and no lifespan events. Web apps are served without the server's bearer
    token, so they must hold no store data themselves: their pages read the store through the REST API under
    ``/v1/agl``, which needs the token.

    Example: ``register("dashboard", "agentlightning_dashboard.web:create_web_app")``.

    Added in 0.4.
    """
