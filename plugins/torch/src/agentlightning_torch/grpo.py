"""GRPO: sample groups of rollouts per task through the store, turn their spans into token-id triplets, update the
policy with a clipped, group-relative policy gradient, and publish each new policy as a new LLM resource version."""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence, Tuple

import anyio
import attrs
from agentlightning.algorithm import Algorithm
from agentlightning.types.core import EnqueueRolloutRequest, RolloutConfig
from agentlightning.types.resources import ProxyLLM

from .checkpoint import checkpoint_dir_for, latest_checkpoint, load_checkpoint, save_checkpoint
from .focus import TaskFocus
from .publishing import policy_llm
from .server.spans import POLICY_VERSION_ATTRIBUTE
from .triplets import spans_to_triplets

__all__ = ["GRPO", "GRPOConfig", "StepReport", "draw_tasks"]

logger = logging.getLogger(__name__)


@attrs.define(kw_only=True)
class GRPOConfig:
    """Hyper-parameters. Defaults are those measured to learn the quickstart task on two CPU cores."""

    group_size: int = 8
    batch_size: int = 16  # tasks per step (each sampled group_size times)
    steps: int = 100
    learning_rate: float = 1e-3
    epochs: int = 4  # gradient steps per batch (the clipped ratio keeps them close to the sampling policy)
    clip: float = 0.2
    clip_high: Optional[float] = None  # upper clip of the ratio (default: clip)
    entropy_coef: float = 0.05
    # KL(uniform || policy) per answer token: unlike the entropy bonus, its pull on a token does not vanish as the
    # token's probability goes to 0, so a right answer pushed down everywhere else stays reachable by sampling
    uniform_kl_coef: float = 0.05
    normalize_by_std: bool = True
    advantage_std: str = "group"  # "group": GRPO's per-group std; "batch": the batch's std (keeps groups' scale)
    flat_groups_to_batch: bool = True  # groups with equal rewards are compared with the batch (see group_advantages)
    kl_coef: float = 0.0
    grad_clip: float = 1.0
    temperature: float = 1.0
    val_temperature: float = 0.0
    max_tokens: int = 3
    val_every: int = 5
    val_size: Optional[int] = None
    checkpoint_every: int = 10
    rollout_timeout: float = 120.0
    target_val_reward: Optional[float] = None  # stop early once validation reaches it
    max_seconds: Optional[float] = None  # stop (after a last validation) once the run is this old
    seed: int = 0
    resource_name: str = "main_llm"
    stall_steps: int = 20  # warn when held-out reward has not improved for this many steps
    # a task field (a dict key or attribute): each step draws its tasks evenly across the field's values, so that no
    # class of tasks goes a step unsampled (None: a plain random sample of the dataset)
    balance_by: Optional[str] = None
    # a task field: each step draws its tasks' classes with weight (1 - the class's recent training reward) +
    # focus_floor, so the classes learned last are sampled most (rewards in [0, 1]; see agentlightning_torch.focus)
    focus_by: Optional[str] = None
    focus_floor: float = 0.3

    def __attrs_post_init__(self) -> None:
        for name in ("group_size", "batch_size", "epochs", "val_every", "max_tokens", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"GRPO {name} must be >= 1, got {getattr(self, name)}")
        if self.steps < 0:
            raise ValueError(f"GRPO steps must be >= 0, got {self.steps}")
        if not self.learning_rate > 0:
            raise ValueError(f"GRPO learning_rate must be > 0, got {self.learning_rate}")
        if self.balance_by is not None and self.focus_by is not None:
            raise ValueError("GRPO balance_by and focus_by are exclusive: set one")
        if not self.focus_floor > 0:
            raise ValueError(f"GRPO focus_floor must be > 0, got {self.focus_floor}")


def draw_tasks(dataset: Sequence[Any], n: int, rng: random.Random, *, balance_by: Optional[str] = None) -> List[Any]:
    """``n`` distinct tasks of ``dataset`` at random; with ``balance_by``, evenly across the values of that task field
    (classes in a random order take turns, one task each, while they have tasks left)."""
    tasks = list(dataset)
    if balance_by is None:
        return rng.sample(tasks, min(n, len(tasks)))
    classes: Dict[Hashable, List[Any]] = {}
    for task in tasks:
        value = task.get(balance_by) if isinstance(task, dict) else getattr(task, balance_by, None)
        try:
            classes.setdefault(value, []).append(task)
        except TypeError as exc:  # an unhashable value
            raise ValueError(f"GRPO balance_by={balance_by!r}: task values must be hashable, got {value!r}") from exc
    queues = [rng.sample(members, len(members)) for members in classes.values()]
    rng.shuffle(queues)
    out: List[Any] = []
    while len(out) < min(n, len(tasks)):
        for queue in queues:
            if queue and len(out) < n:
                out.append(queue.pop())
    return out


@attrs.define(kw_only=True)
class StepReport:
    """What one step (or validation) did; handed to ``on_step`` and kept in ``GRPO.history``."""

    step: int
    kind: str  # "train" | "val"
    policy_version: int
    resources_id: str
    rollouts: int
    triplets: int
    mean_reward: float
    elapsed: float
    total_rollouts: int
    loss: Optional[float] = None
    entropy: Optional[float] = None
    """Mean entropy (nats) of the sampled answer tokens: near 0 means the policy no longer explores."""
    zero_adv_groups: Optional[float] = None
    """Fraction of the step's groups whose rewards were all equal (no group-relative signal)."""
    policy_lag: Optional[int] = None
    """Most policy versions between the weights that served a rollout and the weights being updated (0: on-policy)."""
    stalled_steps: int = 0
    """Steps since the held-out reward last improved (see ``GRPOConfig.stall_steps``)."""
    seconds: Dict[str, float] = attrs.field(factory=dict)
    """Where the step's time went: ``rollouts`` (enqueue to last finished), ``read`` (spans to triplets),
    ``update`` (the gradient steps), and the policy server's ``generate`` / ``record`` within the rollouts."""


class GRPO(Algorithm):
    """Group-relative policy optimisation of a local PyTorch policy.

    ``run(train_dataset, val_dataset)`` starts a :class:`~agentlightning_torch.server.PolicyServer` for the policy
    and, per step, enqueues ``batch_size`` tasks ``group_size`` times each, waits for the runners, builds triplets from
    each rollout's spans, computes ``(reward - group mean) / (group std + eps)`` per group (same task and prompt;
    groups whose rewards are all equal are compared with the batch when ``flat_groups_to_batch``), takes ``epochs``
    clipped policy-gradient steps with an entropy bonus (log-probs at the sampling ``temperature``, so the update
    stays on-policy), and publishes the new weights as a new resources version
    (``{resource_name: ProxyLLM(endpoint=<server>, model=<name>@v<version>)}``) that new rollouts are enqueued with.
    Validation rollouts (every ``val_every`` steps and at the end) decode at ``val_temperature`` (greedy).

    Args:
        model: a local Hugging Face model directory; None builds a tiny random transformer (``model_config``).
        model_config: keyword arguments for :func:`~agentlightning_torch.policy.build_policy` (alphabet, d_model...).
        checkpoint_dir: where checkpoints go; default ``checkpoints/`` next to a file-backed store. An existing
            checkpoint there is resumed from.
        on_step: called with each :class:`StepReport`.
        adapter: turns spans into triplets; default the Trainer's, backed up by ``LlmProxyTraceToTriplet`` (which
            reads the policy server's spans) when it finds no token ids.
        **config: :class:`GRPOConfig` fields.
    """

    records_llm_calls = True
    """Its policy server records every LLM call of the rollouts (so the Trainer does not check the runners' tracers
    for LLM spans)."""

    def __init__(
        self,
        *,
        model: Optional[str] = None,
        model_config: Optional[Dict[str, Any]] = None,
        checkpoint_dir: Optional[str] = None,
        on_step: Optional[Callable[[StepReport], None]] = None,
        device: str = "cpu",
        adapter: Any = None,
        **config: Any,
    ) -> None:
        self.config = GRPOConfig(**config)
        self.model_path = model
        self.model_config = dict(model_config or {})
        self.checkpoint_dir = checkpoint_dir
        self.on_step = on_step
        self.device = device
        self.adapter = adapter
        self.history: List[StepReport] = []
        self.policy: Any = None
        self.reference: Any = None
        self.server: Any = None
        self.policy_version = 0
        self.resources_id: Optional[str] = None
        self.total_rollouts = 0
        self._start = 0.0
        self._served: List[int] = []  # policy versions that served the current step's rollouts
        self._best_val: Optional[float] = None
        self._best_val_step = 0
        self._warned_stall = False
        self._seconds: Dict[str, float] = {}
        self._updated_through = 0  # steps whose update the policy holds
        self._checkpointed = 0  # the step of the last checkpoint written
        cfg = self.config
        self.focus = TaskFocus(cfg.focus_by, cfg.focus_floor) if cfg.focus_by is not None else None

    # -- the loop --------------------------------------------------------------------------------------------

    async def run(self, train_dataset: Any = None, val_dataset: Any = None) -> None:
        if not train_dataset:
            raise ValueError("GRPO needs a non-empty train_dataset")

        from .optim import Adam
        from .policy import build_policy
        from .server import PolicyServer

        cfg = self.config
        store = self.get_store()
        self._start = time.time()
        await self._cancel_stale_rollouts(store)  # first: runner processes start meanwhile
        self.policy = build_policy(model_path=self.model_path, device=self.device, seed=cfg.seed, **self.model_config)
        optimizer = Adam(self.policy.model.parameters(), lr=cfg.learning_rate)  # torch.optim's would load dynamo
        if cfg.kl_coef:  # the KL term pulls towards the initial policy, frozen
            import copy

            from .policy import Policy

            frozen = copy.deepcopy(self.policy.model).eval().requires_grad_(False)
            self.reference = Policy(
                frozen, self.policy.tokenizer, name="reference", device=self.device, hf=self.policy.hf
            )
        rng = random.Random(cfg.seed)
        directory = self.checkpoint_dir or checkpoint_dir_for(store)
        first_step = 0
        resume = latest_checkpoint(directory)
        if resume is not None:
            state = load_checkpoint(resume)
            self.policy.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            first_step = int(state["step"])
            self.policy_version = int(state.get("policy_version", first_step))
            self.total_rollouts = int(state.get("total_rollouts", 0))
            rng.setstate(state["rng"])
            if self.focus is not None:
                self.focus.recent = dict(state.get("focus", {}))
            self._resume_history(state)
            logger.info("GRPO resumed from %s (step %d)", resume, first_step)
        self._updated_through = self._checkpointed = first_step

        self.server = PolicyServer(self.policy, store=store, model_name=self.policy.name).start()
        try:
            await self._publish()
            for step in range(first_step, cfg.steps):
                if val_dataset and step % cfg.val_every == 0:
                    report = await self._validate(step, val_dataset)
                    if cfg.target_val_reward is not None and report.mean_reward >= cfg.target_val_reward:
                        if directory:  # with the validation that ended the run in its history
                            await self._checkpoint(directory, step, optimizer, rng)
                        break
                await self._train_step(step, train_dataset, rng, optimizer)
                await self._publish()
                last = step + 1 == cfg.steps or self._out_of_time()
                if directory and (step + 1) % cfg.checkpoint_every == 0 and not last:
                    await self._checkpoint(directory, step + 1, optimizer, rng)
                if last:
                    if val_dataset:
                        await self._validate(step + 1, val_dataset)
                    if directory:  # after the last validation, so that a resumed run's history has it
                        await self._checkpoint(directory, step + 1, optimizer, rng)
                    break
        except BaseException as exc:
            # Ctrl-C or SIGTERM (the run is cancelled): keep the steps done since the last checkpoint
            if directory and not isinstance(exc, Exception) and self._updated_through > self._checkpointed:
                with anyio.CancelScope(shield=True):
                    await self._checkpoint(directory, self._updated_through, optimizer, rng)
                logger.warning("GRPO interrupted: wrote a checkpoint of step %d", self._updated_through)
            raise
        finally:
            self.server.stop()

    def _resume_history(self, state: Dict[str, Any]) -> None:
        """Training time and step reports of the runs before this one (so that reports, time limits and the
        summary cover the whole run across resumes)."""
        self._start = time.time() - float(state.get("elapsed", 0.0))
        self.history = [StepReport(**report) for report in state.get("history", [])]
        for report in self.history:
            if report.kind == "val" and (self._best_val is None or report.mean_reward > self._best_val + 1e-9):
                self._best_val, self._best_val_step = report.mean_reward, report.step

    async def _cancel_stale_rollouts(self, store: Any) -> None:
        """Rollouts an earlier run left queued name its policy server, which died with it: cancel them (this run
        enqueues its own), so that no runner sends requests to a server that is gone."""
        stale = await store.query_rollouts(status_in=["queuing", "requeuing"])
        for rollout in stale:
            await store.update_rollout(rollout.rollout_id, status="cancelled")
        if len(stale):
            logger.info("GRPO: cancelled %d rollouts an earlier run left queued", len(stale))

    def _out_of_time(self) -> bool:
        limit = self.config.max_seconds
        return limit is not None and time.time() - self._start >= limit

    async def _publish(self) -> None:
        """Publish the current weights as a new resources version; new rollouts are enqueued with it."""
        self.policy_version += 1
        self.server.version = self.policy_version
        update = await self.get_store().add_resources({self.config.resource_name: self._llm(self.config.temperature)})
        self.resources_id = update.resources_id

    def _llm(self, temperature: float) -> ProxyLLM:
        return policy_llm(
            self.server, self.policy, self.policy_version, temperature=temperature, max_tokens=self.config.max_tokens
        )

    async def _rollouts(
        self, tasks: Sequence[Any], mode: str, resources_id: str, repeat: int, step: int
    ) -> List[Tuple[Hashable, Any, List[Any]]]:
        """Enqueue each task ``repeat`` times, wait for all, and return ``(group, rollout, triplets)``."""
        store = self.get_store()
        requests = []
        for index, task in enumerate(tasks):
            for _ in range(repeat):
                requests.append(
                    EnqueueRolloutRequest(
                        input=task,
                        mode=mode,  # type: ignore[arg-type]
                        resources_id=resources_id,
                        config=RolloutConfig(timeout_seconds=self.config.rollout_timeout),
                        metadata={"group": f"{mode}-{step}-{index}", "step": step},
                    )
                )
        began = time.perf_counter()
        served_before = self._server_seconds()
        rollouts = await store.enqueue_many_rollouts(requests)
        ids = [r.rollout_id for r in rollouts]
        pending = set(ids)
        deadline = time.monotonic() + self.config.rollout_timeout + 30
        while pending and time.monotonic() < deadline:
            done = await store.wait_for_rollouts(rollout_ids=sorted(pending), timeout=1.0)
            pending -= {r.rollout_id for r in done}
        waited = time.perf_counter()
        served_after = self._server_seconds()
        self._seconds = {
            "rollouts": waited - began,
            "generate": served_after[0] - served_before[0],
            "record": served_after[1] - served_before[1],
        }
        if pending:
            logger.warning("%d of %d rollouts did not finish in time; they are left out", len(pending), len(ids))
        self.total_rollouts += len(ids) - len(pending)
        finished = await store.query_rollouts(rollout_id_in=ids, status_in=["succeeded"], limit=0)
        if ids and finished.total == 0:
            raise RuntimeError(
                f"GRPO: none of the {len(ids)} {mode} rollouts of step {step} succeeded; the runners' log says why "
                "(the agent raised, or could not reach the policy server)"
            )
        out = []
        for rollout in rollouts:
            if rollout.rollout_id in pending:
                continue
            attempt = await store.get_latest_attempt(rollout.rollout_id)
            if attempt is None:
                continue
            spans = list(await store.query_spans(rollout.rollout_id, attempt.attempt_id))
            triplets = spans_to_triplets(spans, self._adapter())
            out.append(((rollout.metadata or {}).get("group"), rollout, triplets))
            served = [s.attributes.get(POLICY_VERSION_ATTRIBUTE) for s in spans]
            self._served.extend(int(v) for v in served if isinstance(v, int))
        self._seconds["read"] = time.perf_counter() - waited
        return out

    def _server_seconds(self) -> Tuple[float, float]:
        batcher = getattr(self.server, "batcher", None)
        return (batcher.generate_seconds, batcher.record_seconds) if batcher is not None else (0.0, 0.0)

    def _adapter(self) -> Any:
        if self.adapter is not None:
            return self.adapter
        try:
            return self.get_adapter()  # the Trainer's
        except ValueError:
            return None

    @staticmethod
    def _rows(results: Sequence[Tuple[Hashable, Any, List[Any]]]) -> List[Tuple[Hashable, List[int], List[int], float]]:
        rows: List[Tuple[Hashable, List[int], List[int], float]] = []
        for group, _, triplets in results:
            for t in triplets:
                if t.reward is None:
                    continue
                prompt = list(t.prompt.get("token_ids") or [])
                response = list(t.response.get("token_ids") or [])
                if prompt and response:
                    rows.append(((group, tuple(prompt)), prompt, response, float(t.reward)))
        return rows

    async def _validate(self, step: int, val_dataset: Sequence[Any]) -> StepReport:
        cfg = self.config
        tasks = list(val_dataset)[: cfg.val_size] if cfg.val_size else list(val_dataset)
        update = await self.get_store().add_resources({cfg.resource_name: self._llm(cfg.val_temperature)})
        results = await self._rollouts(tasks, "val", update.resources_id, 1, step)
        rows = self._rows(results)
        rewards = [r[3] for r in rows]
        report = self._report(
            step, "val", update.resources_id, len(results), len(rows), rewards, seconds=dict(self._seconds)
        )
        return report

    async def _train_step(self, step: int, dataset: Sequence[Any], rng: random.Random, optimizer: Any) -> None:
        from .grpo_math import group_advantages

        cfg = self.config
        if self.focus is not None:
            tasks = self.focus.draw(dataset, cfg.batch_size, rng)
        else:
            tasks = draw_tasks(dataset, cfg.batch_size, rng, balance_by=cfg.balance_by)
        assert self.resources_id is not None
        self._served = []
        results = await self._rollouts(tasks, "train", self.resources_id, cfg.group_size, step)
        rows = self._rows(results)
        if self.focus is not None:
            self._observe_groups(results)
        rewards = [r[3] for r in rows]
        groups = [r[0] for r in rows]
        advantages = group_advantages(
            rewards,
            groups,
            flat_to_batch=cfg.flat_groups_to_batch,
            normalize_by_std=cfg.normalize_by_std,
            std_over=cfg.advantage_std,
        )
        by_group: Dict[Hashable, set[float]] = {}
        for key, value in zip(groups, rewards, strict=True):
            by_group.setdefault(key, set()).add(value)
        flat = sum(1 for values in by_group.values() if len(values) == 1) / len(by_group) if by_group else None
        lag = max((self.policy_version - v for v in self._served), default=None)
        # rows without signal only add to the entropy bonus; when no row has any, the bonus alone is applied, so a
        # collapsed policy (every group answering alike) regains the entropy it needs to explore again
        keep = [i for i, a in enumerate(advantages) if a != 0.0] or list(range(len(rows)))
        stats: Dict[str, float] = {}
        seconds = dict(self._seconds)
        if keep:
            batch = [rows[i] for i in keep]
            adv = [advantages[i] for i in keep]
            began = time.perf_counter()
            stats = await anyio.to_thread.run_sync(self._update, batch, adv, optimizer)
            self._updated_through = step + 1  # (a cancellation waits for the thread: then this step is not counted)
            seconds["update"] = time.perf_counter() - began
        self._report(
            step, "train", self.resources_id, len(results), len(rows), rewards,
            zero_adv_groups=flat, policy_lag=lag, seconds=seconds, **stats,
        )  # fmt: skip

    def _observe_groups(self, results: Sequence[Tuple[Hashable, Any, List[Any]]]) -> None:
        """Fold each group's mean training reward (over its rollouts' triplets) into the focus of its task's class."""
        assert self.focus is not None
        groups: Dict[Hashable, Tuple[Any, List[float]]] = {}
        for group, rollout, triplets in results:
            rewards = groups.setdefault(group, (rollout.input, []))[1]
            rewards.extend(float(t.reward) for t in triplets if t.reward is not None)
        for task, rewards in groups.values():
            if rewards:
                self.focus.observe(task, sum(rewards) / len(rewards))

    def _update(
        self, batch: List[Tuple[Hashable, List[int], List[int], float]], adv: List[float], optimizer: Any
    ) -> Dict[str, float]:
        import torch

        from .grpo_math import grpo_loss

        cfg = self.config
        policy = self.policy
        prompts = [r[1] for r in batch]
        responses = [r[2] for r in batch]
        advantages = torch.tensor(adv, dtype=torch.float32, device=policy.device)
        with policy.lock:
            policy.model.train()
            old_logp = None  # the sampling policy's log-probs: the first epoch's, before any weight moves
            ref_logp = None
            if cfg.kl_coef and self.reference is not None:
                with torch.no_grad():
                    ref_logp, _, _ = self.reference.token_logprobs(prompts, responses, temperature=cfg.temperature)
            parts = None
            for _ in range(cfg.epochs):
                logp, entropy, mask, uniform_kl = policy.token_stats(prompts, responses, temperature=cfg.temperature)
                if old_logp is None:
                    old_logp = logp.detach()
                parts = grpo_loss(
                    logp,
                    old_logp,
                    advantages,
                    mask,
                    clip=cfg.clip,
                    clip_high=cfg.clip_high,
                    entropy=entropy,
                    entropy_coef=cfg.entropy_coef,
                    ref_logp=ref_logp,
                    kl_coef=cfg.kl_coef,
                    uniform_kl=uniform_kl,
                    uniform_kl_coef=cfg.uniform_kl_coef,
                )
                optimizer.zero_grad(set_to_none=True)
                parts.loss.backward()  # type: ignore[no-untyped-call]
                torch.nn.utils.clip_grad_norm_(policy.model.parameters(), cfg.grad_clip)
                optimizer.step()
            policy.model.eval()
        assert parts is not None
        return {"loss": float(parts.loss.detach()), "entropy": parts.entropy}

    def _report(
        self,
        step: int,
        kind: str,
        resources_id: str,
        rollouts: int,
        triplets: int,
        rewards: List[float],
        **stats: Any,
    ) -> StepReport:
        mean = sum(rewards) / len(rewards) if rewards else 0.0
        if kind == "val" and (self._best_val is None or mean > self._best_val + 1e-9):
            self._best_val, self._best_val_step = mean, step
        report = StepReport(
            step=step,
            kind=kind,
            policy_version=self.policy_version,
            resources_id=resources_id,
            rollouts=rollouts,
            triplets=triplets,
            mean_reward=mean,
            elapsed=time.time() - self._start,
            total_rollouts=self.total_rollouts,
            stalled_steps=step - self._best_val_step if self._best_val is not None else 0,
            **stats,
        )
        self.history.append(report)
        self._warn_if_stalled(report)
        logger.info("GRPO %s step %d: reward %.3f over %d rollouts", kind, step, report.mean_reward, rollouts)
        if self.on_step is not None:
            self.on_step(report)
        return report

    def _warn_if_stalled(self, report: StepReport) -> None:
        cfg = self.config
        target = cfg.target_val_reward
        if self._warned_stall or report.stalled_steps < cfg.stall_steps or report.kind != "train":
            return
        if target is not None and self._best_val is not None and self._best_val >= target:
            return
        self._warned_stall = True
        recent = [h for h in self.history[-cfg.stall_steps :] if h.kind == "train"]
        flat = [h.zero_adv_groups for h in recent if h.zero_adv_groups is not None]
        ent = [h.entropy for h in recent if h.entropy is not None]
        flat_mean = sum(flat) / len(flat) if flat else float("nan")
        ent_mean = sum(ent) / len(ent) if ent else float("nan")
        if flat_mean >= 0.8 and ent_mean < 0.2:  # (False for nan: then the figures are unknown)
            cause = (
                "The policy answers most inputs alike (collapsed): such groups get no group-relative signal; raise "
                "uniform_kl_coef or the temperature."
            )
        else:
            cause = (
                "The policy still explores: this is usually one class of inputs whose right answer is rarely sampled, "
                "which tends to end within 20-60 steps; more steps (or time) let it."
            )
        logger.warning(
            "GRPO: held-out reward has not improved for %d steps (best %.3f at step %d); over them %.0f%% of groups "
            "had all-equal rewards and the answer entropy averaged %.3f. %s",
            report.stalled_steps,
            self._best_val or 0.0,
            self._best_val_step,
            100 * flat_mean,
            ent_mean,
            cause,
        )

    async def _checkpoint(self, directory: str, step: int, optimizer: Any, rng: random.Random) -> None:
        state = {
            "model": self.policy.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "policy_version": self.policy_version,
            "total_rollouts": self.total_rollouts,
            "rng": rng.getstate(),
            "focus": dict(self.focus.recent) if self.focus is not None else {},
            "elapsed": time.time() - self._start,
            "history": [attrs.asdict(report) for report in self.history],
            "config": attrs.asdict(self.config),
            "model_config": self.model_config,
            "model_path": self.model_path,
        }
        await anyio.to_thread.run_sync(save_checkpoint, directory, step, state)
        self._checkpointed = step
