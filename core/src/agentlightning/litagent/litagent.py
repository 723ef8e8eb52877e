"""``LitAgent``: the agent the runner drives, one rollout at a time (or several at once when async)."""

from __future__ import annotations

import inspect
import warnings
import weakref
from typing import TYPE_CHECKING, Any, Callable, Generic, List, Optional, TypeVar, Union

from agentlightning.types.core import Rollout
from agentlightning.types.resources import NamedResources
from agentlightning.types.tracer import Span, SpanCoreFields

if TYPE_CHECKING:
    from agentlightning.runner.base import Runner
    from agentlightning.tracer.base import Tracer
    from agentlightning.trainer.trainer import Trainer

__all__ = ["LitAgent", "RolloutRawResult", "is_v0_1_rollout_api"]

T = TypeVar("T")

RolloutRawResult = Union[None, float, int, bool, List[Any], List[Span], List[SpanCoreFields]]
"""What a rollout method returns: None (spans came from the tracer), a reward, or a list of spans."""

_ASYNC_METHODS = ("training_rollout_async", "validation_rollout_async", "rollout_async")


def is_v0_1_rollout_api(func: Callable[..., Any]) -> bool:
    """Whether ``func`` uses the v0.1 signature (a ``rollout_id`` parameter)."""
    return "rollout_id" in inspect.signature(func).parameters


def _deref(ref: Optional[weakref.ref[Any]], what: str) -> Any:
    if ref is None:
        raise ValueError(f"{what} has not been set for this agent.")
    obj = ref()
    if obj is None:
        raise ValueError(f"{what} reference is no longer valid (object has been garbage collected).")
    return obj


class LitAgent(Generic[T]):
    """Base class of agents: override ``rollout`` (sync) or ``rollout_async`` (async), or the training/validation
    variants. Each is called as ``method(task, resources=..., rollout=...)`` and returns a
    :data:`RolloutRawResult`.
    """

    def __init__(self, *, trained_agents: Optional[str] = None) -> None:
        if trained_agents is not None:
            warnings.warn(
                "`trained_agents` is deprecated. Configure `agent_match` in adapter instead.",
                DeprecationWarning,
                stacklevel=2,
            )
        self.trained_agents = trained_agents
        self._trainer_ref: Optional[weakref.ref[Any]] = None
        self._runner_ref: Optional[weakref.ref[Any]] = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_trainer_ref"] = None  # weak references do not travel to runner processes
        state["_runner_ref"] = None
        return state

    # -- wiring ---------------------------------------------------------------------------------------------------

    def set_trainer(self, trainer: Trainer) -> None:
        self._trainer_ref = weakref.ref(trainer)

    def get_trainer(self) -> Trainer:
        return _deref(getattr(self, "_trainer_ref", None), "Trainer")

    @property
    def trainer(self) -> Trainer:
        return self.get_trainer()

    def set_runner(self, runner: Runner[Any]) -> None:
        self._runner_ref = weakref.ref(runner)

    def get_runner(self) -> Runner[Any]:
        return _deref(getattr(self, "_runner_ref", None), "Runner")

    @property
    def runner(self) -> Runner[Any]:
        return self.get_runner()

    def get_tracer(self) -> Tracer:
        """The runner's tracer, else the trainer's (upstream's lookup order, without its hasattr pitfall)."""
        runner_ref = getattr(self, "_runner_ref", None)
        if runner_ref is not None and runner_ref() is not None and getattr(runner_ref(), "tracer", None) is not None:
            return runner_ref().tracer
        return self.get_trainer().tracer

    @property
    def tracer(self) -> Tracer:
        return self.get_tracer()

    def is_async(self) -> bool:
        """True iff the class overrides one of the ``*_async`` rollout methods."""
        cls = type(self)
        return any(getattr(cls, name) is not getattr(LitAgent, name) for name in _ASYNC_METHODS)

    # -- rollouts -------------------------------------------------------------------------------------------------

    def rollout(self, task: T, resources: NamedResources, rollout: Rollout) -> RolloutRawResult:
        raise NotImplementedError("Agents must implement the `rollout` method.")

    async def rollout_async(self, task: T, resources: NamedResources, rollout: Rollout) -> RolloutRawResult:
        raise NotImplementedError("Agents must implement the `rollout_async` method.")

    def training_rollout(self, task: T, resources: NamedResources, rollout: Rollout) -> RolloutRawResult:
        return self.rollout(task, resources, rollout)

    def validation_rollout(self, task: T, resources: NamedResources, rollout: Rollout) -> RolloutRawResult:
        # Upstream quirk kept: validation delegates to `rollout`, not to `training_rollout`.
        return self.rollout(task, resources, rollout)

    async def training_rollout_async(self, task: T, resources: NamedResources, rollout: Rollout) -> RolloutRawResult:
        return await self.rollout_async(task, resources, rollout)

    async def validation_rollout_async(self, task: T, resources: NamedResources, rollout: Rollout) -> RolloutRawResult:
        return await self.rollout_async(task, resources, rollout)

    # -- deprecated v0 hooks (only the legacy runner called them) -------------------------------------------------

    def on_rollout_start(self, task: Any, runner: Any, tracer: Any) -> None:
        """Deprecated: use :class:`agentlightning.runner.Hook`."""

    def on_rollout_end(self, task: Any, rollout: Any, runner: Any, tracer: Any) -> None:
        """Deprecated: use :class:`agentlightning.runner.Hook`."""
