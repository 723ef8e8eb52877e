"""The :class:`~agentlightning_verl.backend.TrainerBackend` over verl (written against verl 0.9.1's
``RayPPOTrainer``; imports verl, Ray, torch and numpy, so it is loaded only by ``VERL.run``).

verl builds the actor/reference/critic workers and the vLLM rollout replicas (each an OpenAI-compatible HTTP server
that returns token ids); this class drives them one step at a time the way ``RayPPOTrainer.fit`` does, except that
the sequences come from our rows instead of verl's agent loop.

Status: not yet run on a GPU. The CPU tests cover the loop against a fake backend with this interface.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional

from agentlightning.training import PaddedBatch

__all__ = ["VerlBackend", "verl_default_config"]

logger = logging.getLogger(__name__)


def verl_default_config() -> Dict[str, Any]:
    """verl's ``ppo_trainer`` defaults as a plain dict (interpolations left as strings)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = compose(config_name="ppo_trainer")
    container = OmegaConf.to_container(config, resolve=False)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}


class _Placeholder:
    """verl's trainer insists on datasets to size its dataloader; ours never reads from it."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Dict[str, Any]:
        raise RuntimeError("the VERL loop feeds verl its own batches; verl's dataloader is not used")


class VerlBackend:
    """verl's workers and vLLM servers, driven step by step."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        from omegaconf import OmegaConf

        merged = OmegaConf.merge(OmegaConf.create(verl_default_config()), OmegaConf.create(dict(config)))
        OmegaConf.set_struct(merged, False)
        self.config: Any = merged
        path = str(merged.actor_rollout_ref.model.path)
        self.model_name = "/".join(path.rstrip("/").split("/")[-2:])
        self.pad_token_id = 0
        self.trainer: Any = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> List[str]:
        import ray
        from omegaconf import OmegaConf
        from verl.trainer.constants_ppo import get_ppo_ray_runtime_env
        from verl.trainer.main_ppo_v0 import BaseTaskRunner
        from verl.trainer.ppo.ray_trainer import RayPPOTrainer
        from verl.trainer.ppo.utils import need_critic, need_reference_policy
        from verl.utils.config import omega_conf_to_dataclass, validate_config
        from verl.workers.config import HFModelConfig

        cfg = self.config
        if not ray.is_initialized():
            ray_init = dict(OmegaConf.to_container(cfg.ray_kwargs.get("ray_init", {})) or {})
            runtime_env = OmegaConf.merge(get_ppo_ray_runtime_env(cfg), ray_init.pop("runtime_env", {}) or {})
            ray.init(runtime_env=OmegaConf.to_container(runtime_env), **ray_init)
        OmegaConf.resolve(cfg)
        runner = BaseTaskRunner()
        actor_rollout_cls, worker_group_cls = runner.add_actor_rollout_worker(cfg)
        runner.add_critic_worker(cfg)
        runner.add_reward_model_resource_pool(cfg)
        runner.add_teacher_model_resource_pool(cfg)
        runner.add_ref_policy_worker(cfg, actor_rollout_cls)
        validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
        model_config: HFModelConfig = omega_conf_to_dataclass(cfg.actor_rollout_ref.model)
        tokenizer = model_config.tokenizer
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_token_id = int(pad if pad is not None else tokenizer.eos_token_id)
        steps = int(cfg.trainer.total_training_steps or 1)
        size = int(cfg.data.train_batch_size) * steps
        self.trainer = RayPPOTrainer(
            config=cfg,
            tokenizer=tokenizer,
            processor=model_config.processor,
            role_worker_mapping=runner.role_worker_mapping,
            resource_pool_manager=runner.init_resource_pool_mgr(cfg),
            ray_worker_group_cls=worker_group_cls,
            train_dataset=_Placeholder(size),
            val_dataset=_Placeholder(1),
            collate_fn=lambda rows: rows,
            train_sampler=None,
        )
        self.trainer.init_workers()
        self.trainer.global_steps = 0
        return [str(a) for a in self.trainer.llm_server_manager.server_addresses]

    def load_checkpoint(self) -> int:
        self.trainer._load_checkpoint()
        return int(self.trainer.global_steps)

    def wake_up(self) -> None:
        """Sync the actor's weights into the vLLM replicas and wake them (verl's ``update_weights``)."""
        self.trainer.checkpoint_manager.update_weights(self.trainer.global_steps)

    def sleep(self) -> None:
        self.trainer.checkpoint_manager.sleep_replicas()

    def save_checkpoint(self, step: int) -> None:
        self.trainer.global_steps = step
        self.trainer._save_checkpoint()

    def shutdown(self) -> None:
        import ray

        if self.trainer is not None:
            try:
                self.trainer.checkpoint_manager.sleep_replicas()
            finally:
                self.trainer = None
        if ray.is_initialized():
            ray.shutdown()

    # -- one update ----------------------------------------------------------------------------------------------

    def _data(self, batch: PaddedBatch) -> Any:
        import numpy as np
        import torch
        from verl import DataProto

        def tensor(rows: List[List[Any]], dtype: Any) -> Any:
            return torch.tensor(rows, dtype=dtype)

        tensors = {
            "prompts": tensor(batch.prompts, torch.long),
            "responses": tensor(batch.responses, torch.long),
            "input_ids": tensor(batch.input_ids, torch.long),
            "attention_mask": tensor(batch.attention_mask, torch.long),
            "position_ids": tensor(batch.position_ids, torch.long),
            "response_mask": tensor(batch.response_mask, torch.long),
            "token_level_scores": tensor(batch.token_level_scores, torch.float32),
            "agl_drop": torch.tensor(batch.drop, dtype=torch.bool),
        }
        non_tensors = {
            "uid": np.array([str(g) for g in batch.group_ids], dtype=object),
            "rollout_id": np.array(batch.rollout_ids, dtype=object),
        }
        meta = {"temperature": float(self.config.actor_rollout_ref.rollout.temperature)}
        return DataProto.from_dict(tensors=tensors, non_tensors=non_tensors, meta_info=meta)

    def train_step(self, batch: PaddedBatch, advantages: Optional[List[float]], step: int) -> Mapping[str, float]:
        import torch
        from verl.trainer.ppo.ray_trainer import apply_kl_penalty, compute_advantage
        from verl.utils.metric import reduce_metrics

        trainer, cfg = self.trainer, self.config
        trainer.global_steps = step
        data = self._data(batch)
        if advantages is not None:  # rollout-level advantages, computed by the loop
            data.batch["agl_advantage"] = torch.tensor(advantages, dtype=torch.float32)
        metrics: Dict[str, float] = {}
        data.meta_info["global_token_num"] = torch.sum(data.batch["attention_mask"], dim=-1).tolist()
        data.meta_info["images_seqlens"] = []
        old_log_prob, _ = trainer._compute_old_log_prob(data)
        old_log_prob.batch.pop("entropys", None)
        data = data.union(old_log_prob)
        if trainer.use_reference_policy:
            data = data.union(trainer._compute_ref_log_prob(data))
        if trainer.use_critic:
            data = data.union(trainer._compute_values(data))
        if cfg.algorithm.use_kl_in_reward:
            data, kl_metrics = apply_kl_penalty(
                data, kl_ctrl=trainer.kl_ctrl_in_reward, kl_penalty=cfg.algorithm.kl_penalty
            )
            metrics.update(kl_metrics)
        else:
            data.batch["token_level_rewards"] = data.batch["token_level_scores"]
        if advantages is not None:
            mask = data.batch["response_mask"].to(torch.float32)
            data.batch["advantages"] = data.batch.pop("agl_advantage")[:, None] * mask
            data.batch["returns"] = data.batch["advantages"].clone()
        else:
            data = compute_advantage(
                data,
                adv_estimator=cfg.algorithm.adv_estimator,
                gamma=cfg.algorithm.gamma,
                lam=cfg.algorithm.lam,
                num_repeat=cfg.actor_rollout_ref.rollout.n,
                norm_adv_by_std_in_grpo=cfg.algorithm.get("norm_adv_by_std_in_grpo", True),
                config=cfg.algorithm,
            )
        data = self._keep_trainable(data, metrics)
        if len(data) == 0:
            metrics["training/n_rows_trained"] = 0.0
            return metrics
        if cfg.trainer.get("balance_batch", True):
            trainer._balance_batch(data, metrics=metrics)
        if trainer.use_critic:
            metrics.update(reduce_metrics(trainer._update_critic(data).meta_info["metrics"]))
        if cfg.trainer.get("critic_warmup", 0) <= step:
            metrics.update(reduce_metrics(trainer._update_actor(data).meta_info["metrics"]))
        metrics["training/n_rows_trained"] = float(len(data))
        return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}

    def _keep_trainable(self, data: Any, metrics: Dict[str, float]) -> Any:
        """After advantages (whole groups): drop flagged rows, then cut to a multiple of the mini-batch size and
        of the data-parallel size, as upstream does."""
        import torch

        drop = data.batch.pop("agl_drop")
        keep = torch.nonzero(~drop).flatten().tolist()
        metrics["training/n_rows_dropped_overlong"] = float(len(data) - len(keep))
        data = data.select_idxs(keep) if keep else data.select_idxs([])
        mini = int(self.config.actor_rollout_ref.actor.ppo_mini_batch_size) * int(
            self.config.actor_rollout_ref.rollout.n
        )
        world = int(self.config.trainer.n_gpus_per_node) * int(self.config.trainer.nnodes)
        multiple = max(mini, world, 1)
        usable = (len(data) // multiple) * multiple
        if usable == 0 and len(data) >= world:
            usable = (len(data) // world) * world
        metrics["training/n_rows_dropped_remainder"] = float(len(data) - usable)
        if usable < len(data):
            order = torch.randperm(len(data)).tolist()[:usable]
            data = data.select_idxs(sorted(order))
        return data
