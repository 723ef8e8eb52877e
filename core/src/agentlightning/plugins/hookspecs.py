"""Hook specifications for agentlightning plugins.

Plugins implement these with ``@agentlightning.plugins.hookimpl`` in a module named by an entry point of the
``agentlightning`` group. Registration hooks run once, the first time a component of that kind is looked up. They
must be cheap: no I/O and no heavy imports (import torch, litellm, ... inside the registered factories instead).

Each registration hook receives ``register(name, factory, *, description="", aliases=())``. ``factory`` is a class or
callable that builds the component from keyword arguments, or a ``"module:attribute"`` string, which is imported only
when the component is first built. Names must be unique across installed plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import hookspec

if TYPE_CHECKING:
    from .registry import Register


@hookspec
def agentlightning_register_stores(register: Register) -> None:
    """Register LightningStore backends.

    Example: ``register("sqlite", "agentlightning_sqlite.store:SqliteLightningStore", url_schemes=("sqlite",))``.

    A store registration may also give ``url_schemes=("sqlite",)`` so that store URLs such as
    ``sqlite:///run.db`` resolve to it; the factory then receives ``url=`` with the whole URL.

    Added in 0.4.
    """


@hookspec
def agentlightning_register_tracers(register: Register) -> None:
    """Register tracers (``"otel"``, ``"agentops"``, ...). Added in 0.4."""


@hookspec
def agentlightning_register_emitters(register: Register) -> None:
    """Register emitter sinks: objects that receive emitted rewards, messages and objects. Added in 0.4."""


@hookspec
def agentlightning_register_adapters(register: Register) -> None:
    """Register trace adapters (``"triplet"``, ``"messages"``, ...). Added in 0.4."""


@hookspec
def agentlightning_register_algorithms(register: Register) -> None:
    """Register training algorithms (``"baseline"``, ``"apo"``, ``"verl"``, ...). Added in 0.4."""


@hookspec
def agentlightning_register_execution_strategies(register: Register) -> None:
    """Register execution strategies (``"inprocess"``, ``"multiprocess"``, ...). Added in 0.4."""


@hookspec
def agentlightning_register_exports(register: Register) -> None:
    """Register top-level names that ``agentlightning`` resolves lazily.

    Example: ``register("APO", "agentlightning_apo:APO")``.

    This is how ``agl.InMemoryLightningStore`` or ``agl.APO`` work without core importing any plugin.

    Added in 0.4.
    """


@hookspec
def agentlightning_register_commands(register: Register) -> None:
    """Register ``agl`` sub-commands.

    ``factory`` is called with an ``argparse`` sub-parsers object's new parser and must add its arguments and set
    ``parser.set_defaults(func=handler)``; ``handler(args) -> int`` runs the command.

    Added in 0.4.
    """
