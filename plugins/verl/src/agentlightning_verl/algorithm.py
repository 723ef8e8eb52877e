"""``VERL``: the training loop. verl owns the GPUs (actor, reference, critic, vLLM servers); this loop owns the data:
it publishes the servers to runners, enqueues rollouts, turns their spans into rows and hands batches to verl."""

from __future__ import annotations

import copy
import importlib.util
import logging
import random
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import anyio
from agentlightning.algorithm import Algorithm
from agentlightning.training import RowsConfig, build_rows, pad_rows, rollout_level_advantages
from agentlightning.types.core import Dataset, RolloutConfig
from agentlightning.types.resources import LLM

from .backend import TrainerBackend
from .config import compose_config, get_key, rows_config_kwargs
from .rollouts import enqueue_groups, rollout_samples, wait_for_all

__all__ = ["VERL", "step_batches"]

logger = logging.getLogger(__name__)

BackendSpec = Union[None, str, Callable[[Dict[str, Any]], TrainerBackend]]
DEFAULT_BACKEND = "agentlightning_verl.verl_backend:VerlBackend"


def _items(dataset: Optional[Dataset[Any]]) -> List[Any]:
    return [] if dataset is None else [dataset[i] for i in range(len(dataset))]


def step_batches(n_items: int, batch_size: int, epoch: int, seed: int) -> List[List[int]]:
    """Index batches of one epoch: a seeded shuffle cut into full batches (the remainder is dropped, as verl's
    dataloader does); a dataset smaller than a batch is one batch. Deterministic, so a resumed run sees the same
    batches."""
    indices = list(range(n_items))
    random.Random(f"{seed}:{epoch}").shuffle(indices)
    if n_items <= batch_size:
        return [indices] if indices else []
    return [indices[i : i + batch_size] for i in range(0, n_items - batch_size + 1, batch_size)]


class VERL(Algorithm):
    """Distributed PPO/GRPO on verl.

    Args:
        config: verl's config keys (``data``, ``actor_rollout_ref``, ``algorithm``, ``trainer``, ...) plus our
            ``agentlightning`` section; see :data:`agentlightning_verl.config.DEFAULTS`.
        overrides: ``["key.path=value", ...]`` applied last.
        trainer_cls: builds the :class:`~agentlightning_verl.backend.TrainerBackend` from the composed config;
            default verl's (needs ``agentlightning-verl[gpu]``). A ``"module:attr"`` string is imported.
        on_step: called with each step's metrics dict (``kind`` "train" or "val", ``step``, numbers).

    Per step: wake the vLLM servers, enqueue ``actor_rollout_ref.rollout.n`` rollouts of each sample of the batch
    (copies share ``metadata["data_id"]``), wait, sleep the servers, adapt each rollout's latest attempt's spans to
    token-id triplets, build rows (``agentlightning.trace_aggregator.level``), train, publish a new resources
    version, checkpoint every ``trainer.save_freq`` steps and validate every ``trainer.test_freq``.
    """

    def __init__(
        self,
        config: Optional[Mapping[str, Any]] = None,
        *,
        overrides: Optional[Sequence[str]] = None,
        trainer_cls: BackendSpec = None,
        on_step: Optional[Callable[[Dict[str, Any]], None]] = None,
        daemon_cls: Any = None,
    ) -> None:
        if daemon_cls is not None:
            raise TypeError("daemon_cls is not supported: the loop is VERL's own; pass trainer_cls= instead")
        # compose now, so that a bad config fails at construction, before any GPU is touched
        self.config: Dict[str, Any] = compose_config(config, overrides)
        self.trainer_cls = trainer_cls
        self.on_step = on_step
        self.history: List[Dict[str, Any]] = []
        self.backend: Optional[TrainerBackend] = None
        self.global_step = 0
        self.resources_id: Optional[str] = None
        self.policy_version = 0
        self._proxy: Any = None
        self._owns_proxy = False  # we built it
        self._started_proxy = False  # we started it (and so stop it)
        self._addresses: List[str] = []

    # -- setup -------------------------------------------------------------------------------------------------

    def _build_backend(self, n_train: int) -> TrainerBackend:
        spec = self.trainer_cls
        if spec is None:
            from .deps import require_gpu

            require_gpu("VERL(...).run")
            spec = DEFAULT_BACKEND
        if isinstance(spec, str):
            from agentlightning.plugins.registry import resolve_factory

            spec = resolve_factory(spec)
        config = copy.deepcopy(self.config)
        if n_train:  # verl sizes its LR schedules by the step count
            config["trainer"]["total_training_steps"] = self._total_steps(n_train)
        backend = spec(config)
        missing = [m for m in ("start", "load_checkpoint", "wake_up", "sleep", "train_step", "save_checkpoint",
                               "shutdown") if not callable(getattr(backend, m, None))]  # fmt: skip
        if missing:
            raise TypeError(f"trainer backend {type(backend).__name__} lacks {', '.join(missing)}")
        return backend

    def _choose_proxy(self) -> Any:
        mode = get_key(self.config, "agentlightning.use_llm_proxy")
        proxy = self.get_llm_proxy()
        if mode is False:
            return None
        if proxy is not None:
            return proxy
        if mode is True or importlib.util.find_spec("agentlightning_litellm") is not None:
            try:
                from agentlightning_litellm import LLMProxy
            except ImportError as exc:
                raise ImportError(
                    "agentlightning.use_llm_proxy needs the LLM proxy: pip install agentlightning-litellm"
                ) from exc
            self._owns_proxy = True
            return LLMProxy(store=self.get_store())
        return None

    def _llm(self, temperature: float) -> LLM:
        assert self.backend is not None
        params = {"temperature": temperature}
        if self._proxy is not None:
            resource: LLM = self._proxy.as_resource(model=self.backend.model_name, sampling_parameters=params)
            return resource
        return LLM(endpoint=f"http://{self._addresses[0]}/v1", model=self.backend.model_name,
                   sampling_parameters=params)  # fmt: skip

    async def _serve(self) -> None:
        """Point the proxy (if any) at the rollout servers."""
        assert self.backend is not None
        if self._proxy is None:
            return
        name = self.backend.model_name
        self._proxy.update_model_list(
            [
                {"model_name": name, "litellm_params": {"model": f"hosted_vllm/{name}", "api_base": f"http://{a}/v1"}}
                for a in self._addresses
            ]
        )
        running = self._proxy.is_running() if callable(getattr(self._proxy, "is_running", None)) else False
        if not running:
            await anyio.to_thread.run_sync(self._proxy.start)
            self._started_proxy = True

    async def _publish(self, temperature: float) -> str:
        """A new resources version: runners pick it up for the rollouts enqueued with its id."""
        self.policy_version += 1
        name = get_key(self.config, "agentlightning.resource_name")
        update = await self.get_store().add_resources({name: self._llm(temperature)})
        return update.resources_id

    # -- the loop ----------------------------------------------------------------------------------------------

    async def run(
        self, train_dataset: Optional[Dataset[Any]] = None, val_dataset: Optional[Dataset[Any]] = None
    ) -> None:
        train, val = _items(train_dataset), _items(val_dataset)
        if not train and not val:
            raise ValueError("VERL needs a train_dataset (and/or a val_dataset to only validate)")
        self.backend = backend = self._build_backend(len(train))
        try:
            self._addresses = list(await anyio.to_thread.run_sync(backend.start))
            if not self._addresses:
                raise RuntimeError("the trainer backend started no rollout servers")
            self._proxy = self._choose_proxy()
            await self._serve()
            self.global_step = int(await anyio.to_thread.run_sync(backend.load_checkpoint))
            await self._loop(train, val)
        finally:
            if self._proxy is not None and (self._owns_proxy or self._started_proxy):
                await anyio.to_thread.run_sync(self._proxy.stop)
            await anyio.to_thread.run_sync(backend.shutdown)

    async def _loop(self, train: List[Any], val: List[Any]) -> None:
        cfg = self.config
        test_freq = get_key(cfg, "trainer.test_freq")
        save_freq = get_key(cfg, "trainer.save_freq")
        if val and get_key(cfg, "trainer.val_before_train") and self.global_step == 0:
            await self._validate(val)
        if not train:
            return
        total = self._total_steps(len(train))
        batch_size = get_key(cfg, "data.train_batch_size")
        seed = get_key(cfg, "agentlightning.seed")
        self.resources_id = await self._publish(float(get_key(cfg, "actor_rollout_ref.rollout.temperature")))
        step = 0
        for epoch in range(get_key(cfg, "trainer.total_epochs")):
            for indices in step_batches(len(train), batch_size, epoch, seed):
                if step >= total:
                    break
                step += 1
                if step <= self.global_step:
                    continue  # done before the checkpoint we resumed from
                await self._train_step(step, [train[i] for i in indices])
                self.global_step = step
                self.resources_id = await self._publish(float(get_key(cfg, "actor_rollout_ref.rollout.temperature")))
                last = step >= total
                if save_freq > 0 and (step % save_freq == 0 or last):
                    await anyio.to_thread.run_sync(self._backend().save_checkpoint, step)
                if val and ((test_freq > 0 and step % test_freq == 0) or (last and test_freq > 0)):
                    await self._validate(val)

    def _total_steps(self, n_train: int) -> int:
        cfg = self.config
        per_epoch = len(step_batches(n_train, int(get_key(cfg, "data.train_batch_size")), 0, 0))
        total = per_epoch * int(get_key(cfg, "trainer.total_epochs"))
        limit = get_key(cfg, "trainer.total_training_steps")
        return min(total, int(limit)) if limit is not None else total

    def _backend(self) -> TrainerBackend:
        assert self.backend is not None
        return self.backend

    def _rollout_config(self) -> RolloutConfig:
        return RolloutConfig(
            timeout_seconds=float(get_key(self.config, "agentlightning.rollout_timeout_seconds")),
            unresponsive_seconds=float(get_key(self.config, "agentlightning.rollout_unresponsive_seconds")),
        )

    async def _collect(self, samples: List[Any], *, n: int, mode: str, resources_id: str, step: int) -> List[Any]:
        store = self.get_store()
        backend = self._backend()
        await anyio.to_thread.run_sync(backend.wake_up)
        try:
            rollouts = await enqueue_groups(store, samples, n=n, mode=mode, resources_id=resources_id,
                                            config=self._rollout_config(), step=step)  # fmt: skip
            wait = float(get_key(self.config, "agentlightning.rollout_timeout_seconds")) + float(
                get_key(self.config, "agentlightning.wait_grace_seconds")
            )
            pending = await wait_for_all(store, [r.rollout_id for r in rollouts], timeout=wait,
                                         poll=float(get_key(self.config, "agentlightning.poll_interval")))  # fmt: skip
        finally:
            await anyio.to_thread.run_sync(backend.sleep)
        return await rollout_samples(store, rollouts, self._adapter(), skip=pending)

    def _adapter(self) -> Any:
        try:
            return self.get_adapter()
        except ValueError:
            from agentlightning.adapter import TracerTraceToTriplet

            return TracerTraceToTriplet()

    async def _train_step(self, step: int, samples: List[Any]) -> None:
        cfg = self.config
        started = time.monotonic()
        assert self.resources_id is not None
        n = get_key(cfg, "actor_rollout_ref.rollout.n")
        rollouts = await self._collect(samples, n=n, mode="train", resources_id=self.resources_id, step=step)
        result = build_rows(rollouts, RowsConfig(**rows_config_kwargs(cfg)))
        metrics: Dict[str, Any] = {f"training/{k}": v for k, v in result.stats.items()}
        if result.rows:
            backend = self._backend()
            batch = pad_rows(result.rows, backend.pad_token_id)
            advantages = None
            if get_key(cfg, "agentlightning.rollout_level_advantage"):
                advantages = rollout_level_advantages(result.rows)
            trained = await anyio.to_thread.run_sync(backend.train_step, batch, advantages, step)
            metrics.update(trained)
        else:
            logger.warning("Step %d: no rollout produced token ids; nothing to train on", step)
        metrics["timing/step_seconds"] = time.monotonic() - started
        self._report("train", step, metrics)

    async def _validate(self, val: List[Any]) -> Dict[str, Any]:
        cfg = self.config
        size = get_key(cfg, "data.val_batch_size") or len(val)
        resources_id = await self._publish(float(get_key(cfg, "actor_rollout_ref.rollout.val_kwargs.temperature", 0.0)))
        rollouts = await self._collect(val[:size], n=1, mode="val", resources_id=resources_id, step=self.global_step)
        result = build_rows(rollouts, RowsConfig(**rows_config_kwargs(cfg)))
        metrics = {f"val/{k}": v for k, v in result.stats.items()}
        return self._report("val", self.global_step, metrics)

    def _report(self, kind: str, step: int, metrics: Dict[str, Any]) -> Dict[str, Any]:
        entry = {"kind": kind, "step": step, **metrics}
        self.history.append(entry)
        reward = metrics.get(f"{'training' if kind == 'train' else 'val'}/reward")
        logger.info("VERL %s step %d: reward %s", kind, step, reward)
        if self.on_step is not None:
            self.on_step(entry)
        return entry
