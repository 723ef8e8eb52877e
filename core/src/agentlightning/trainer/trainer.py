"""``Trainer``: builds the store, tracer, adapter, runner, strategy and algorithm, then runs agent and algorithm."""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any, Optional, Sequence, Tuple, Union

from agentlightning.algorithm.base import Algorithm
from agentlightning.algorithm.fast import Baseline, FastAlgorithm
from agentlightning.execution.base import ExecutionStrategy
from agentlightning.litagent.litagent import LitAgent
from agentlightning.runner.base import Runner
from agentlightning.runner.hooks import Hook, as_hook_list
from agentlightning.store.base import LightningStore
from agentlightning.tracer.base import Tracer
from agentlightning.types.core import Dataset
from agentlightning.types.resources import NamedResources, ProxyLLM

from .build import build_component, plugin_registry
from .bundles import AlgorithmRun, RunnerRun
from .legacy import TrainerLegacy
from .progress import ProgressReporter

__all__ = ["Trainer", "DatasetLike"]

DatasetLike = Union[Dataset[Any], Sequence[Any]]
"""Anything with ``len()`` and integer indexing; a list is fine."""

logger = logging.getLogger(__name__)


def _default_tracer() -> Tracer:
    from agentlightning.tracer.otel import OtelTracer

    return OtelTracer()


def _default_adapter() -> Any:
    try:
        from agentlightning.adapter import TracerTraceToTriplet
    except ImportError:  # adapters not available: algorithms then work on spans
        return None
    return TracerTraceToTriplet()


class Trainer(TrainerLegacy):
    """Runs an agent over datasets with an algorithm.

    Every component may be given as an instance, a class, a factory, a registered name (or import path), or a dict
    ``{"type": name, **kwargs}``; the store also as a URL (``"sqlite:///run.db"``, ``"http://127.0.0.1:4747"``).

    Args:
        algorithm: what drives the run (None: runners serve the store's queue until stopped).
        store: default ``memory://``.
        tracer: default :class:`~agentlightning.tracer.otel.OtelTracer`.
        adapter: turns spans into training data (default: the triplet adapter when available).
        runner: default :class:`~agentlightning.runner.LitAgentRunner` with this tracer and ``max_rollouts``.
        strategy: ``"inprocess"`` (upstream's ``"shm"``) or ``"multiprocess"`` (upstream's ``"cs"``); default:
            multiprocess when ``n_runners > 1`` or ``AGL_CURRENT_ROLE`` is set (multi-machine roles), else in-process.
        n_runners: runner workers (a strategy instance's own ``n_runners`` wins).
        max_rollouts: per runner worker, then it stops.
        initial_resources: published by the algorithm before the first rollout.
        llm_proxy: handed to the algorithm (its store is set to the run's store).
        hooks: :class:`~agentlightning.runner.Hook` objects called around every rollout.
        progress: show progress (a live line on a terminal, log lines elsewhere); default True. A
            :class:`~agentlightning.trainer.ProgressReporter` is used as given (extra fields, stream, quiet).
        port: port of the HTTP store server the multi-process strategy starts for a memory store.
        n_workers, max_tasks: deprecated aliases of n_runners and max_rollouts.
        triplet_exporter: deprecated alias of ``adapter`` (ignored, with a warning, when ``adapter`` is given); the
            adapter is also readable as :attr:`triplet_exporter`.
        dev: deprecated (use :meth:`dev`); kept for the v0.1 worker loop (:meth:`fit_v0`).
        daemon: whether :meth:`fit_v0`'s worker processes are daemonic (default True: they end with this process).
    """

    def __init__(
        self,
        *,
        algorithm: Any = None,
        store: Any = None,
        tracer: Any = None,
        adapter: Any = None,
        runner: Any = None,
        strategy: Any = None,
        n_runners: Optional[int] = None,
        max_rollouts: Optional[int] = None,
        initial_resources: Optional[NamedResources] = None,
        llm_proxy: Any = None,
        hooks: Union[Hook, Sequence[Hook], None] = None,
        progress: Union[bool, ProgressReporter] = True,
        port: Optional[int] = None,
        n_workers: Optional[int] = None,
        max_tasks: Optional[int] = None,
        triplet_exporter: Any = None,
        dev: bool = False,
        daemon: bool = True,
    ) -> None:
        if dev:
            warnings.warn("Trainer(dev=True) is deprecated; use Trainer.dev(...).", DeprecationWarning, stacklevel=2)
        if triplet_exporter is not None:
            if adapter is not None:
                warnings.warn(
                    "`triplet_exporter` is deprecated and ignored because `adapter` is given.",
                    DeprecationWarning, stacklevel=2,
                )  # fmt: skip
            else:
                warnings.warn("`triplet_exporter` is deprecated; use `adapter`.", DeprecationWarning, stacklevel=2)
                adapter = triplet_exporter
        if not daemon:
            logger.warning("daemon=False: fit_v0's worker processes are not ended when this process exits")
        self.dev_mode = dev
        self.daemon = daemon
        if n_workers is not None:
            warnings.warn("`n_workers` is deprecated; use `n_runners`.", DeprecationWarning, stacklevel=2)
            if n_runners is not None and n_runners != n_workers:
                logger.warning("`n_workers` is ignored when `n_runners` is provided.")
        if max_tasks is not None:
            warnings.warn("`max_tasks` is deprecated; use `max_rollouts`.", DeprecationWarning, stacklevel=2)
        self.n_runners: int = n_runners or n_workers or 1
        self.max_rollouts = max_rollouts if max_rollouts is not None else max_tasks
        self.initial_resources = initial_resources
        self.progress = progress
        self.port = port
        self.hooks: Tuple[Hook, ...] = tuple(as_hook_list(hooks))

        tracer_type: Any = Tracer  # abstract: build_component only uses it for isinstance checks
        self.tracer: Tracer = build_component(  # type: ignore[assignment]
            tracer, expected_type=tracer_type, spec_name="tracer", default_factory=_default_tracer,
            registry=plugin_registry("tracers"),
        )  # fmt: skip
        self.adapter = self._build_adapter(adapter)
        self.triplet_exporter = self.adapter  # upstream's older name
        self.algorithm: Optional[Algorithm] = build_component(
            algorithm, expected_type=Algorithm, spec_name="algorithm", allow_none=True,
            registry=plugin_registry("algorithms"),
        )  # fmt: skip
        self.store_url: Optional[str] = store if isinstance(store, str) and "://" in store else None
        self.store: LightningStore = self._build_store(store)
        self.strategy: ExecutionStrategy = self._build_strategy(strategy)
        strategy_runners = getattr(self.strategy, "n_runners", None)
        if isinstance(strategy_runners, int) and not isinstance(strategy_runners, bool) and strategy_runners > 0:
            self.n_runners = strategy_runners
        from agentlightning.runner.agent import LitAgentRunner

        self.runner: Runner[Any] = build_component(  # type: ignore[assignment]
            runner, expected_type=Runner, spec_name="runner",
            default_factory=lambda: LitAgentRunner(tracer=self.tracer, max_rollouts=self.max_rollouts),
            optional_defaults={"tracer": self.tracer, "max_rollouts": self.max_rollouts},
        )  # fmt: skip
        self.llm_proxy = self._build_llm_proxy(llm_proxy)

    # -- building -------------------------------------------------------------------------------------------------

    def _build_adapter(self, spec: Any) -> Any:
        if spec is None:
            return _default_adapter()
        if isinstance(spec, dict) and "type" not in spec:
            from agentlightning.adapter import TracerTraceToTriplet

            return TracerTraceToTriplet(**spec)
        if isinstance(spec, (str, dict)):
            from .build import instantiate_from_spec

            return instantiate_from_spec(spec, spec_name="adapter", registry=plugin_registry("adapters"))
        if isinstance(spec, type):
            return spec()
        return spec

    def _build_store(self, spec: Any) -> LightningStore:
        from agentlightning.store import open_store

        if spec is None:
            return open_store("memory://")
        if isinstance(spec, str):
            return open_store(spec)
        if isinstance(spec, dict):
            kwargs = dict(spec)
            name = kwargs.pop("type", None) or kwargs.pop("url", None)
            if name is None:
                raise ValueError("store dict must have a 'type' key (a store name) or a 'url' key")
            if "://" in str(name):
                self.store_url = str(name)
            return open_store(name, **kwargs)
        store_type: Any = LightningStore
        return build_component(spec, expected_type=store_type, spec_name="store")  # type: ignore[return-value]

    def _build_strategy(self, spec: Any) -> ExecutionStrategy:
        if spec is None:  # upstream's default is "cs"; roles (AGL_CURRENT_ROLE) need it, one runner does not
            split = os.environ.get("AGL_CURRENT_ROLE") is not None
            spec = "cs" if self.n_runners > 1 or split else "inprocess"
        defaults: dict[str, Any] = {"n_runners": self.n_runners}
        if self.store_url is not None:
            defaults["store_url"] = self.store_url
        if self.port is not None:
            defaults["server_port"] = self.port
        strategy = build_component(
            spec, expected_type=ExecutionStrategy, spec_name="strategy", optional_defaults=defaults,
            registry=plugin_registry("execution_strategies"),
        )  # fmt: skip
        if self.port is not None and hasattr(strategy, "server_port") and not isinstance(spec, (str, dict, type)):
            strategy.server_port = self.port  # type: ignore[union-attr]
        return strategy  # type: ignore[return-value]

    def _build_llm_proxy(self, spec: Any) -> Any:
        if spec is None or not isinstance(spec, (str, dict, type)):
            return spec
        from .build import instantiate_component, instantiate_from_spec

        if isinstance(spec, type):
            return instantiate_component(spec, None, {"store": self.store})
        if isinstance(spec, dict):
            spec = {**spec}
            spec.setdefault("store", self.store)
        return instantiate_from_spec(spec, spec_name="llm_proxy", optional_defaults={"store": self.store})

    # -- running --------------------------------------------------------------------------------------------------

    def fit(
        self,
        agent: LitAgent[Any],
        train_dataset: Optional[DatasetLike] = None,
        *,
        val_dataset: Optional[DatasetLike] = None,
    ) -> None:
        """Run the algorithm and the runners until the algorithm finishes. Ctrl-C stops everything within
        seconds and re-raises ``KeyboardInterrupt``; on a durable store, calling ``fit`` again resumes."""
        self._execute(agent, self.algorithm, train_dataset, val_dataset)

    def dev(
        self,
        agent: LitAgent[Any],
        train_dataset: Optional[DatasetLike] = None,
        *,
        val_dataset: Optional[DatasetLike] = None,
    ) -> None:
        """A quick run with a :class:`~agentlightning.algorithm.FastAlgorithm` (default :class:`Baseline`)."""
        algorithm = self.algorithm if self.algorithm is not None else Baseline()
        if not isinstance(algorithm, FastAlgorithm):
            raise TypeError(
                "Trainer.dev() requires an algorithm that inherits from FastAlgorithm. "
                f"Received {type(algorithm).__name__}."
            )
        self._execute(agent, algorithm, train_dataset, val_dataset)

    def _execute(self, agent: LitAgent[Any], algorithm: Any, train_dataset: Any, val_dataset: Any) -> None:
        if not isinstance(agent, LitAgent):
            raise TypeError(
                f"agent must be a LitAgent (or a function decorated with @rollout), got {type(agent).__name__}"
            )
        if isinstance(train_dataset, str):  # upstream's v0.1 form: a task server's URL
            logger.warning("Trainer.fit takes datasets; for a server URL it runs Trainer.fit_v0 (deprecated).")
            self.fit_v0(agent, train_dataset, val_data=val_dataset)
            return
        agent.set_trainer(self)
        self.strategy.execute(
            AlgorithmRun(self, algorithm, train_dataset, val_dataset),
            RunnerRun(agent, self.runner, (*self.hooks, *self._capture_check(algorithm, self.initial_resources))),
            self.store,
        )

    @staticmethod
    def _capture_check(algorithm: Any, resources: Optional[NamedResources] = None) -> Tuple[Hook, ...]:
        """Warns after the first rollouts when they have no LLM spans (or no token ids, for algorithms that train
        on tokens: not the fast algorithms, nor one whose ``needs_token_ids`` is False). No check for an algorithm whose
        ``records_llm_calls`` is True (it serves the model and records every call itself), nor when the initial
        ``resources`` hold an LLM proxy's endpoint (:class:`ProxyLLM`: the proxy records every call): the runners'
        tracers see none of those calls."""
        from agentlightning.instrumentation.doctor import CaptureCheck

        if getattr(algorithm, "records_llm_calls", False) is True:
            return ()
        if any(isinstance(resource, ProxyLLM) for resource in (resources or {}).values()):
            return ()

        needs_ids = (
            algorithm is not None
            and not isinstance(algorithm, FastAlgorithm)
            and bool(getattr(algorithm, "needs_token_ids", True))
        )
        return (CaptureCheck(need_token_ids=needs_ids),)

    def __repr__(self) -> str:
        return (
            f"Trainer(algorithm={type(self.algorithm).__name__}, store={type(self.store).__name__}, "
            f"strategy={self.strategy!r}, n_runners={self.n_runners})"
        )
