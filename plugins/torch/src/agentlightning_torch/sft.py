"""SFT: supervised fine-tuning of a local policy on the good traces of its own rollouts or of a teacher's.

Each round enqueues the training tasks with the current policy's resources (or the teacher's), keeps the rollouts
whose final reward reaches ``reward_threshold`` (rejection sampling), turns their LLM calls into examples, trains the
policy on the response tokens only (cross-entropy masked to responses), and publishes the new weights as a new
resources version.

Examples come from token ids when the policy served the call (its own spans, read with the LLM-proxy adapter), and
from the chat messages otherwise: a teacher's tokens are not the policy's, so its prompt is re-encoded with the
policy's chat template and its answer with the policy's tokenizer (plus the end-of-sequence token).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import anyio
import attrs
from agentlightning.algorithm import Algorithm
from agentlightning.types.core import EnqueueRolloutRequest, RolloutConfig

from .publishing import policy_llm, publish_policy
from .triplets import spans_to_triplets

__all__ = [
    "SFT",
    "SFTConfig",
    "SFTReport",
    "Example",
    "examples_from_spans",
    "examples_from_records",
    "fine_tune",
    "sft_step",
    "apply_lora",
]

logger = logging.getLogger(__name__)

Example = Tuple[Tuple[int, ...], Tuple[int, ...]]
"""``(prompt token ids, response token ids)``: the loss covers the response only."""


@attrs.define(kw_only=True)
class SFTConfig:
    """Hyper-parameters of :class:`SFT`."""

    rounds: int = 3
    tasks_per_round: Optional[int] = None  # tasks sampled per round (None: the whole train set)
    samples_per_task: int = 1
    reward_threshold: float = 1.0  # keep rollouts whose final reward is >= this
    epochs: int = 4  # passes over the kept examples per round
    batch_size: int = 32
    learning_rate: float = 3e-3
    grad_clip: float = 1.0
    keep_previous: bool = True  # train on every example kept so far, not only this round's
    temperature: float = 1.0  # sampling of the policy's own rollouts
    val_temperature: float = 0.0
    max_tokens: int = 3
    rollout_timeout: float = 120.0
    target_val_reward: Optional[float] = None  # stop once validation reaches it
    resource_name: str = "main_llm"
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        for name in ("rounds", "samples_per_task", "epochs", "batch_size", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"SFT {name} must be >= 1, got {getattr(self, name)}")
        if self.tasks_per_round is not None and self.tasks_per_round < 1:
            raise ValueError(f"SFT tasks_per_round must be >= 1 or None, got {self.tasks_per_round}")
        if not self.learning_rate > 0:
            raise ValueError(f"SFT learning_rate must be > 0, got {self.learning_rate}")


@attrs.define(kw_only=True)
class SFTReport:
    """One round (``kind="train"``) or validation (``kind="val"``); handed to ``on_round``, kept in ``history``."""

    round: int
    kind: str
    policy_version: int
    rollouts: int
    mean_reward: float
    kept: int = 0  # rollouts at or above the threshold (train)
    examples: int = 0  # examples trained on this round
    loss: Optional[float] = None
    elapsed: float = 0.0


def _chat_example(policy: Any, messages: Sequence[Mapping[str, Any]]) -> Optional[Example]:
    """A chat record (prompt messages + the assistant's answer) re-encoded with the policy's tokenizer."""
    if not messages or messages[-1].get("role") != "assistant" or messages[-1].get("tool_calls"):
        return None
    answer = messages[-1].get("content")
    if not isinstance(answer, str) or not answer:
        return None
    prompt = policy.encode_chat(list(messages[:-1]))
    if policy.hf:
        response = list(policy.tokenizer.encode(answer, add_special_tokens=False))
    else:
        response = list(policy.tokenizer.encode(answer))
    return tuple(prompt), tuple([*response, policy.eos_token_id])


def examples_from_spans(policy: Any, spans: Sequence[Any], *, own: bool, adapter: Any = None) -> List[Example]:
    """The training examples of one attempt's spans: token-id triplets when the policy served the calls (``own``),
    else (or when they carry no token ids) the chat messages re-encoded for the policy."""
    if own:
        triplets = spans_to_triplets(spans, adapter)
        examples = [
            (tuple(t.prompt["token_ids"]), tuple(t.response["token_ids"]))
            for t in triplets
            if t.prompt.get("token_ids") and t.response.get("token_ids")
        ]
        if examples:
            return examples
    from agentlightning.adapter import TraceToMessages

    out = []
    for record in TraceToMessages().adapt(list(spans)):
        example = _chat_example(policy, record["messages"])
        if example is not None:
            out.append(example)
    return out


def examples_from_records(policy: Any, records: Any) -> List[Example]:
    """Examples from chat records (``agl export --format messages`` or ``openai-chat`` lines: dicts with
    ``messages``), re-encoded with the policy's tokenizer; records whose last message is no plain assistant answer
    are skipped."""
    out = []
    for record in records:
        messages = record.get("messages") if isinstance(record, Mapping) else None
        example = _chat_example(policy, messages) if isinstance(messages, list) else None
        if example is not None:
            out.append(example)
    return out


def fine_tune(
    policy: Any,
    examples: Sequence[Example],
    *,
    optimizer: Any = None,
    epochs: int = 4,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    grad_clip: float = 1.0,
    seed: int = 0,
) -> List[float]:
    """``epochs`` shuffled passes of :func:`sft_step` over ``examples`` in batches; returns each step's loss.
    ``optimizer``: default Adam over the trainable parameters at ``learning_rate``."""
    from .optim import Adam

    if optimizer is None:
        params = [p for p in policy.model.parameters() if p.requires_grad]
        optimizer = Adam(params, lr=learning_rate)
    order = list(examples)
    rng = random.Random(seed)
    losses: List[float] = []
    for _ in range(epochs):
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            losses.append(sft_step(policy, optimizer, order[start : start + batch_size], grad_clip=grad_clip))
    return losses


def sft_step(policy: Any, optimizer: Any, batch: Sequence[Example], *, grad_clip: float = 1.0) -> float:
    """One gradient step of mean token cross-entropy over the responses of ``batch`` (prompt tokens are context,
    never targets); returns the loss (0.0, and no step, when no example has a response)."""
    import torch

    batch = [(p, r) for p, r in batch if r]  # nothing to learn from an empty answer
    if not batch:
        return 0.0
    prompts = [list(p) for p, _ in batch]
    responses = [list(r) for _, r in batch]
    with policy.lock:
        policy.model.train()
        logp, _, mask = policy.token_logprobs(prompts, responses, temperature=1.0)
        mask = mask.float()
        loss = -(logp * mask).sum() / mask.sum().clamp(min=1.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in policy.model.parameters() if p.requires_grad]
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        policy.model.eval()
    return float(loss.detach())


def apply_lora(policy: Any, lora: Mapping[str, Any]) -> None:
    """Wrap a Hugging Face policy's model with peft LoRA adapters (only they are trained)."""
    if not policy.hf:
        raise ValueError("LoRA needs a Hugging Face causal LM (model=PATH or a transformers model)")
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise ImportError("SFT(lora=...) needs peft: pip install peft") from exc
    import warnings

    options = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "task_type": "CAUSAL_LM", **dict(lora)}
    with warnings.catch_warnings():  # peft reads an attribute that transformers 5 deprecates; nothing to act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        policy.model = get_peft_model(policy.model, LoraConfig(**options))


class SFT(Algorithm):
    """Supervised fine-tuning from traces with rejection sampling, on a local PyTorch policy.

    Args:
        model: a local Hugging Face causal LM directory; None builds the tiny transformer (``model_config``).
        model_config: keyword arguments for :func:`~agentlightning_torch.policy.build_policy`.
        policy: an already built :class:`~agentlightning_torch.policy.Policy` (wins over ``model``).
        teacher: named resources (e.g. ``{"main_llm": LLM(endpoint=..., model=...)}``) the rollouts are collected
            with instead of the current policy's: distillation from a stronger model.
        lora: peft ``LoraConfig`` options; trains LoRA adapters of a Hugging Face model instead of all weights.
        adapter: spans -> triplets for the policy's own rollouts (default: the policy server's proxy spans).
        on_round: called with each :class:`SFTReport`.
        **config: :class:`SFTConfig` fields.
    """

    def __init__(
        self,
        *,
        model: Optional[str] = None,
        model_config: Optional[Dict[str, Any]] = None,
        policy: Any = None,
        teacher: Optional[Mapping[str, Any]] = None,
        lora: Optional[Mapping[str, Any]] = None,
        adapter: Any = None,
        device: str = "cpu",
        on_round: Optional[Callable[[SFTReport], None]] = None,
        **config: Any,
    ) -> None:
        self.config = SFTConfig(**config)
        self.model_path = model
        self.model_config = dict(model_config or {})
        self.policy = policy
        self.teacher = dict(teacher) if teacher is not None else None
        self.lora = dict(lora) if lora is not None else None
        self.adapter = adapter
        self.device = device
        self.on_round = on_round
        self.history: List[SFTReport] = []
        self.examples: List[Example] = []
        self.server: Any = None
        self.policy_version = 0
        self.resources_id: Optional[str] = None
        self._start = 0.0

    async def run(self, train_dataset: Any = None, val_dataset: Any = None) -> None:
        if not train_dataset:
            raise ValueError("SFT needs a non-empty train_dataset")
        from .optim import Adam
        from .policy import build_policy
        from .server import PolicyServer

        cfg = self.config
        self._start = time.time()
        if self.policy is None:
            self.policy = build_policy(
                model_path=self.model_path, device=self.device, seed=cfg.seed, **self.model_config
            )
        if self.lora is not None:
            apply_lora(self.policy, self.lora)
        params = [p for p in self.policy.model.parameters() if p.requires_grad]
        optimizer = Adam(params, lr=cfg.learning_rate)
        rng = random.Random(cfg.seed)
        store = self.get_store()
        self.server = PolicyServer(self.policy, store=store, model_name=self.policy.name).start()
        teacher_id = (await store.add_resources(self.teacher)).resources_id if self.teacher is not None else None
        try:
            await self._publish()
            if val_dataset:
                await self._validate(0, val_dataset)
            for round_ in range(cfg.rounds):
                tasks = list(train_dataset)
                if cfg.tasks_per_round is not None:
                    tasks = rng.sample(tasks, min(cfg.tasks_per_round, len(tasks)))
                assert self.resources_id is not None
                results = await self._collect(tasks, "train", teacher_id or self.resources_id, cfg.samples_per_task)
                kept = [(r, spans) for r, spans in results if r is not None and r >= cfg.reward_threshold]
                fresh = [
                    example
                    for _, spans in kept
                    for example in examples_from_spans(self.policy, spans, own=teacher_id is None, adapter=self.adapter)
                ]
                self.examples = (self.examples if cfg.keep_previous else []) + fresh
                loss = await anyio.to_thread.run_sync(self._train, list(self.examples), optimizer, rng)
                await self._publish()
                rewards = [r if r is not None else 0.0 for r, _ in results]
                self._report(
                    round_, "train", len(results), rewards, kept=len(kept), examples=len(self.examples), loss=loss
                )
                if val_dataset:
                    report = await self._validate(round_ + 1, val_dataset)
                    if cfg.target_val_reward is not None and report.mean_reward >= cfg.target_val_reward:
                        break
        finally:
            self.server.stop()

    def _train(self, examples: List[Example], optimizer: Any, rng: random.Random) -> Optional[float]:
        """Fine-tune on ``examples``; the mean loss of the last epoch."""
        cfg = self.config
        losses = fine_tune(
            self.policy, examples, optimizer=optimizer, epochs=cfg.epochs, batch_size=cfg.batch_size,
            grad_clip=cfg.grad_clip, seed=rng.randrange(2**31),
        )  # fmt: skip
        last = losses[-max(1, len(losses) // cfg.epochs) :]
        return sum(last) / len(last) if last else None

    async def _publish(self) -> None:
        cfg = self.config
        self.policy_version += 1
        self.resources_id = await publish_policy(
            self.get_store(), self.server, self.policy, self.policy_version,
            resource_name=cfg.resource_name, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
        )  # fmt: skip

    async def _collect(
        self, tasks: Sequence[Any], mode: str, resources_id: str, repeat: int
    ) -> List[Tuple[Optional[float], List[Any]]]:
        """Run each task ``repeat`` times with ``resources_id``; ``(final reward, latest attempt's spans)`` of each
        finished rollout."""
        from agentlightning.emitter.reward import find_final_reward

        store = self.get_store()
        config = RolloutConfig(timeout_seconds=self.config.rollout_timeout)
        requests = [
            EnqueueRolloutRequest(input=task, mode=mode, resources_id=resources_id, config=config)  # type: ignore[arg-type]
            for task in tasks
            for _ in range(repeat)
        ]
        ids = [r.rollout_id for r in await store.enqueue_many_rollouts(requests)]
        pending = set(ids)
        deadline = time.monotonic() + self.config.rollout_timeout + 30
        while pending and time.monotonic() < deadline:
            pending -= {r.rollout_id for r in await store.wait_for_rollouts(rollout_ids=sorted(pending), timeout=1.0)}
        if pending:
            logger.warning("SFT: %d of %d %s rollouts did not finish in time", len(pending), len(ids), mode)
        out: List[Tuple[Optional[float], List[Any]]] = []
        for rollout_id in ids:
            attempt = None if rollout_id in pending else await store.get_latest_attempt(rollout_id)
            if attempt is None:
                continue
            spans = list(await store.query_spans(rollout_id, attempt.attempt_id))
            reward = find_final_reward(spans) if attempt.status == "succeeded" else None
            out.append((reward, spans))
        return out

    async def _validate(self, round_: int, val_dataset: Sequence[Any]) -> SFTReport:
        cfg = self.config
        llm = policy_llm(
            self.server, self.policy, self.policy_version, temperature=cfg.val_temperature, max_tokens=cfg.max_tokens
        )
        update = await self.get_store().add_resources({cfg.resource_name: llm})
        results = await self._collect(list(val_dataset), "val", update.resources_id, 1)
        return self._report(round_, "val", len(results), [r if r is not None else 0.0 for r, _ in results])

    def _report(self, round_: int, kind: str, rollouts: int, rewards: List[float], **stats: Any) -> SFTReport:
        report = SFTReport(
            round=round_,
            kind=kind,
            policy_version=self.policy_version,
            rollouts=rollouts,
            mean_reward=sum(rewards) / len(rewards) if rewards else 0.0,
            elapsed=time.time() - self._start,
            **stats,
        )
        self.history.append(report)
        logger.info("SFT %s round %d: reward %.3f over %d rollouts", kind, round_, report.mean_reward, rollouts)
        if self.on_round is not None:
            self.on_round(report)
        return report
