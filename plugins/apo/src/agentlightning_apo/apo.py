"""APO: automatic prompt optimisation by beam search with textual gradients (after ProTeGi and TextGrad).

Each round, every beam member is run on training tasks; an LLM critiques the prompt from those runs (the "textual
gradient") and another LLM rewrites the prompt to answer the critique. Candidates are scored on validation tasks,
the best ``beam_width`` survive, and the round's leader is scored on the whole validation set. See ``docs/apo.md``.
"""

from __future__ import annotations

import logging
import math
import random
from typing import TYPE_CHECKING, Any, Dict, Generic, Iterator, List, Optional, Sequence, Set, Tuple, TypeVar

import anyio
from agentlightning.algorithm.base import Algorithm
from agentlightning.algorithm.utils import batch_iter_over_dataset
from agentlightning.types.core import Dataset
from agentlightning.types.resources import PromptTemplate

from .evaluation import Evaluator, gather
from .ledger import Ledger, check_run_name
from .placeholders import placeholders_of, repair_edit, template_problems
from .prompting import (
    BUILTIN_CRITIQUE_PROMPTS,
    BUILTIN_EDIT_PROMPTS,
    RETRY_PROMPT,
    PromptFile,
    PromptSource,
    RolloutResult,
    format_experiments,
    load_prompts,
)
from .report import write_report
from .state import APOState, CandidateRecord, RoundRecord, VersionedPromptTemplate

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["APO"]


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - openai is a dependency
        raise ImportError("APO needs the openai package: pip install openai") from exc
    return openai


def _default_client() -> Any:
    openai = _import_openai()
    try:
        return openai.AsyncOpenAI()
    except openai.OpenAIError as exc:
        raise ValueError(
            f"APO was given no async_openai_client and cannot make one from the environment ({exc}); pass "
            "APO(openai.AsyncOpenAI(base_url=..., api_key=...)) or set OPENAI_API_KEY (and OPENAI_BASE_URL)"
        ) from exc


_SETUP_ERRORS = (401, 403, 404)
"""HTTP statuses of the optimiser's endpoint that no retry will fix: stop the run and say so."""


logger = logging.getLogger(__name__)

T_task = TypeVar("T_task")

_PARAMS = (
    "gradient_model", "apply_edit_model", "diversity_temperature", "gradient_batch_size", "val_batch_size",
    "beam_width", "branch_factor", "beam_rounds", "rollout_batch_timeout", "run_initial_validation",
    "max_edit_attempts",
)  # fmt: skip


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"APO: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class APO(Algorithm, Generic[T_task]):
    """Automatic prompt optimisation of one :class:`~agentlightning.PromptTemplate` among the initial resources.

    Args:
        async_openai_client: an ``openai.AsyncOpenAI`` (or compatible) client for the critique and edit calls;
            None builds ``openai.AsyncOpenAI()`` from the environment (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``)
            when the run starts.
        gradient_model: model that writes critiques.
        apply_edit_model: model that rewrites the prompt.
        diversity_temperature: sampling temperature of both calls.
        gradient_batch_size: training tasks run per branch, and runs shown to the critic.
        val_batch_size: validation tasks shared by all candidates of a round.
        beam_width: prompts kept after each round.
        branch_factor: children per parent per round.
        beam_rounds: rounds; the run ends after the last one.
        rollout_batch_timeout: seconds to wait for one batch of rollouts; unfinished ones are left out.
        run_initial_validation: score the seed on the full validation set first.
        critique_prompts, edit_prompts: built-in prompt names or files (``.md``, or ``.poml`` with the ``poml``
            extra); one is picked at random per call. Default: all built-in ones.
        max_edit_attempts: tries per edit; an answer that drops or invents a placeholder (or does not parse) is
            refused and the editor is asked again, told what was wrong. Refused edits are never published.
        run_name: names this run's entries in the store; a run with the same name resumes from its checkpoint.
        report_path: where ``<report_path>.json`` and ``.md`` are written after every round (None: no files).
        seed: seed of APO's own random choices (parents, samples, prompt variants).
    """

    def __init__(
        self,
        async_openai_client: Optional[AsyncOpenAI] = None,
        *,
        gradient_model: str = "gpt-5-mini",
        apply_edit_model: str = "gpt-4.1-mini",
        diversity_temperature: float = 1.0,
        gradient_batch_size: int = 4,
        val_batch_size: int = 16,
        beam_width: int = 4,
        branch_factor: int = 4,
        beam_rounds: int = 3,
        rollout_batch_timeout: float = 3600.0,
        run_initial_validation: bool = True,
        critique_prompts: Optional[Sequence[PromptSource]] = None,
        edit_prompts: Optional[Sequence[PromptSource]] = None,
        max_edit_attempts: int = 3,
        run_name: str = "apo",
        report_path: Optional[str] = "apo_report",
        seed: Optional[int] = None,
        _poml_trace: bool = False,
    ) -> None:
        self.async_openai_client = async_openai_client
        self.gradient_model = gradient_model
        self.apply_edit_model = apply_edit_model
        self.diversity_temperature = float(diversity_temperature)
        self.gradient_batch_size = _positive_int("gradient_batch_size", gradient_batch_size)
        self.val_batch_size = _positive_int("val_batch_size", val_batch_size)
        self.beam_width = _positive_int("beam_width", beam_width)
        self.branch_factor = _positive_int("branch_factor", branch_factor)
        self.beam_rounds = _positive_int("beam_rounds", beam_rounds, minimum=0)
        self.max_edit_attempts = _positive_int("max_edit_attempts", max_edit_attempts)
        if not rollout_batch_timeout or rollout_batch_timeout <= 0:
            raise ValueError(f"APO: rollout_batch_timeout must be > 0 seconds, got {rollout_batch_timeout!r}")
        self.rollout_batch_timeout = float(rollout_batch_timeout)
        self.run_initial_validation = bool(run_initial_validation)
        self.critique_prompts: List[PromptFile] = load_prompts(critique_prompts, BUILTIN_CRITIQUE_PROMPTS, "critique")
        self.edit_prompts: List[PromptFile] = load_prompts(edit_prompts, BUILTIN_EDIT_PROMPTS, "edit")
        self.retry_prompt = PromptFile.load(RETRY_PROMPT)
        self.run_name = check_run_name(run_name)
        self.report_path = report_path
        self._random = random.Random(seed)
        self._poml_trace = _poml_trace
        self._adapter: Any = None
        self._run_client: Any = None
        self._runs = 0
        self.state: Optional[APOState] = None

    # -- accessors --------------------------------------------------------------------------------------------------

    def get_seed_prompt_template(self) -> Tuple[str, PromptTemplate]:
        """The first :class:`PromptTemplate` of the initial resources, with its name."""
        resources = self.get_initial_resources()
        if not resources:
            raise ValueError(
                "APO needs initial resources with a PromptTemplate to optimise (Trainer initial_resources=)"
            )
        for name, resource in resources.items():
            if isinstance(resource, PromptTemplate):
                return name, resource
        raise ValueError(
            f"No PromptTemplate found in the initial resources ({', '.join(resources) or 'none'}); "
            "APO optimises a prompt template"
        )

    def get_adapter(self) -> Any:
        """The Trainer's adapter when it is a ``TraceToMessages``, else a fresh ``TraceToMessages``."""
        from agentlightning.adapter import TraceToMessages

        if self._adapter is None:
            try:
                adapter = super().get_adapter()
            except ValueError:
                adapter = None
            self._adapter = adapter if isinstance(adapter, TraceToMessages) else TraceToMessages()
        return self._adapter

    def get_best_prompt(self) -> PromptTemplate:
        """The best prompt so far (the seed until a full validation beats it)."""
        if self.state is None or self.state.best_version is None:
            raise ValueError("No best prompt found")
        return self.state.candidates[self.state.best_version].prompt_template()

    def get_best_score(self) -> float:
        """The best prompt's full-validation score (-inf before any full validation)."""
        if self.state is None or self.state.best_score is None:
            return -math.inf
        return self.state.best_score

    def _client(self) -> Any:
        if self._run_client is not None:
            return self._run_client
        if self.async_openai_client is None:
            self._run_client = _default_client()
            return self._run_client
        return self.async_openai_client

    def _open_client(self) -> bool:
        """Choose this run's client; True when APO made it (and must close it).

        An async client's pooled connections belong to the event loop that opened them, and each ``fit`` runs a new
        loop. So the first run uses the given client as it is, and later runs a copy with a fresh connection pool.
        """
        self._runs += 1
        if self.async_openai_client is None:
            self._run_client = _default_client()
            return True
        copy = getattr(self.async_openai_client, "copy", None)
        if self._runs == 1 or copy is None:
            self._run_client = self.async_openai_client
            return False
        self._run_client = copy(http_client=_import_openai().DefaultAsyncHttpxClient())
        return True

    # -- the run ----------------------------------------------------------------------------------------------------

    async def run(
        self, train_dataset: Optional[Dataset[T_task]] = None, val_dataset: Optional[Dataset[T_task]] = None
    ) -> None:
        """Optimise the seed prompt for ``beam_rounds`` rounds (resuming a checkpointed run of the same name)."""
        if train_dataset is None or len(train_dataset) == 0:
            raise ValueError("train_dataset is required for APO algorithm (a non-empty list of tasks)")
        if val_dataset is None or len(val_dataset) == 0:
            raise ValueError("val_dataset is required for APO algorithm (a non-empty list of tasks)")
        self.get_seed_prompt_template()  # refuse bad resources before any client is made
        owned = self._open_client()
        try:
            await self._search(train_dataset, val_dataset)
        finally:
            client, self._run_client = self._run_client, None
            if owned and client is not None:
                with anyio.CancelScope(shield=True):
                    await client.close()

    async def _search(self, train_dataset: Dataset[Any], val_dataset: Dataset[Any]) -> None:
        resource_name, seed = self.get_seed_prompt_template()
        try:
            seed_names = placeholders_of(seed.template, seed.engine)
        except NotImplementedError:
            seed_names = set()
        except ValueError as exc:
            raise ValueError(f"the seed prompt template {resource_name!r} does not parse: {exc}") from exc
        ledger = Ledger(self.get_store(), self.run_name)
        evaluator = Evaluator(
            ledger, self.get_initial_resources() or {}, resource_name, self.get_adapter(), self.rollout_batch_timeout
        )
        self.state = state = await self._open_state(ledger, resource_name, seed)
        if self._poml_trace:
            self._enable_poml_trace()
        grad_iter = batch_iter_over_dataset(train_dataset, self.gradient_batch_size)
        val_iter = batch_iter_over_dataset(val_dataset, self.val_batch_size)

        if self.run_initial_validation and not state.initial_validation_done:
            seed_version = next(iter(state.candidates))
            await self._score_full(evaluator, state.candidate(seed_version), val_dataset, 0, "[Initial]")
            record = state.candidates[seed_version]
            state.best_score = record.full_val_scores()[-1]
            state.initial_validation_done = True
            logger.info("APO %s: seed %s scores %.3f on the full validation set", self.run_name, seed_version,
                        state.best_score)  # fmt: skip
            await self._checkpoint(ledger, state)

        while state.rounds_done < self.beam_rounds:
            await self._round(state, ledger, evaluator, seed_names, grad_iter, val_iter, val_dataset)
            await self._checkpoint(ledger, state)

        state.status = "finished"
        await self._checkpoint(ledger, state)
        if state.best_version is not None:  # last write: the best prompt becomes the store's latest resources
            await ledger.publish(ledger.best_id, evaluator.resources_for(state.candidate(state.best_version)))
        logger.info(
            "APO %s finished after %d rounds: best %s with full-validation score %s",
            self.run_name, state.rounds_done, state.best_version,
            "-" if state.best_score is None else f"{state.best_score:.3f}",
        )  # fmt: skip

    async def _open_state(self, ledger: Ledger, resource_name: str, seed: PromptTemplate) -> APOState:
        state = await ledger.load()
        if state is not None:
            if state.seed_template != seed.template or state.resource_name != resource_name:
                raise ValueError(
                    f"the store already holds APO run {self.run_name!r} for another seed prompt; pass another "
                    "run_name= to start a new run in this store (the old run is kept)"
                )
            logger.info(
                "APO %s: resuming from the store after %d rounds (%d candidates)",
                self.run_name, state.rounds_done, len(state.candidates),
            )  # fmt: skip
            await ledger.cancel_stale_rollouts()
            state.params = self._params()
            state.version_counter = await ledger.next_free_version(state.version_counter)
            state.status = "running"
            return state
        state = APOState(
            run_name=self.run_name, resource_name=resource_name, seed_template=seed.template,
            seed_engine=seed.engine, params=self._params(),
        )  # fmt: skip
        state.version_counter = await ledger.next_free_version(0)
        version = self._new_version(state, ledger)
        state.candidates[version] = CandidateRecord(
            version=version, template=seed.template, engine=seed.engine, round=0
        )
        state.beam = [{"version": version, "score": None}]
        state.best_version = version
        await self._checkpoint(ledger, state)
        return state

    def _params(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in _PARAMS}

    @staticmethod
    def _new_version(state: APOState, ledger: Ledger) -> str:
        version = ledger.version_id(state.version_counter)
        state.version_counter += 1
        return version

    async def _checkpoint(self, ledger: Ledger, state: APOState) -> None:
        import time

        state.updated_at = time.time()
        await ledger.save(state)
        if self.report_path:
            try:
                write_report(state, self.report_path)
            except OSError as exc:  # the store still has everything
                logger.error("APO %s: could not write the report to %s: %s", self.run_name, self.report_path, exc)

    async def _score_full(
        self, evaluator: Evaluator, candidate: VersionedPromptTemplate, val_dataset: Dataset[Any], rnd: int, label: str
    ) -> float:
        tasks = [val_dataset[i] for i in range(len(val_dataset))]
        _, evaluation = await evaluator.evaluate(candidate, tasks, "val", split="val_full", round=rnd, label=label)
        assert self.state is not None
        self.state.candidates[candidate.version].evaluations.append(evaluation)
        return evaluation.score

    def _choose_parents(self, beam: List[VersionedPromptTemplate]) -> List[VersionedPromptTemplate]:
        if len(beam) < self.beam_width:
            logger.debug("beam has %d prompts for width %d: parents repeat", len(beam), self.beam_width)
            return [beam[i % len(beam)] for i in range(self.beam_width)]
        return self._random.sample(beam, self.beam_width)

    async def _round(
        self,
        state: APOState,
        ledger: Ledger,
        evaluator: Evaluator,
        placeholders: Set[str],
        grad_iter: Iterator[List[Any]],
        val_iter: Iterator[List[Any]],
        val_dataset: Dataset[Any],
    ) -> None:
        rnd = state.rounds_done + 1
        beam = [state.candidate(b["version"]) for b in state.beam]
        jobs = [(parent, next(grad_iter)) for parent in self._choose_parents(beam) for _ in range(self.branch_factor)]

        def branch(index: int, parent: VersionedPromptTemplate, batch: List[Any]) -> Any:
            label = f"[Round {rnd:02d} | Branch {index + 1:02d} | Prompt {parent.version}]"
            return lambda: self._make_child(state, ledger, evaluator, placeholders, parent, batch, rnd, label)

        failed_before = len(state.discarded_edits)
        made = await gather([branch(i, parent, batch) for i, (parent, batch) in enumerate(jobs)])
        children = [c for c in made if c is not None]
        errors = [d["reason"] for d in state.discarded_edits[failed_before:] if d.get("error")]
        if jobs and len(errors) == len(jobs):
            raise RuntimeError(f"APO round {rnd}: every optimiser call failed (last: {errors[-1]})")

        candidates = beam + children
        val_batch = next(val_iter)

        def score(candidate: VersionedPromptTemplate) -> Any:
            async def go() -> float:
                label = f"[Round {rnd:02d} | Candidate {candidate.version}]"
                _, ev = await evaluator.evaluate(candidate, val_batch, "val", split="val_batch", round=rnd, label=label)
                state.candidates[candidate.version].evaluations.append(ev)
                return ev.score

            return go

        scores = await gather([score(c) for c in candidates])
        for candidate, value in zip(candidates, scores, strict=True):
            candidate.score = value
        ranked = sorted(candidates, key=lambda c: -(c.score if c.score is not None else -math.inf))
        new_beam = ranked[: self.beam_width]
        if not new_beam:
            raise ValueError("No beam candidates any more")
        leader = new_beam[0]
        leader_score = await self._score_full(evaluator, leader, val_dataset, rnd, f"[Round {rnd:02d} | Leader]")
        improved = state.best_score is None or leader_score > state.best_score
        if improved:
            state.best_version, state.best_score = leader.version, leader_score
            await ledger.publish(ledger.best_id, evaluator.resources_for(leader))
            logger.info("APO %s round %d: new best %s, score %.3f", self.run_name, rnd, leader.version, leader_score)
        else:
            logger.warning(
                "APO %s round %d: best prompt not updated (leader %s scored %.3f, best %s has %.3f)",
                self.run_name, rnd, leader.version, leader_score, state.best_version, state.best_score,
            )  # fmt: skip
        state.beam = [{"version": c.version, "score": c.score} for c in new_beam]
        state.rounds.append(
            RoundRecord(
                round=rnd, children=[c.version for c in children], beam=list(state.beam), leader=leader.version,
                leader_score=leader_score, best_version=state.best_version, best_score=state.best_score,
                improved=improved,
            )
        )  # fmt: skip
        state.rounds_done = rnd

    async def _make_child(
        self,
        state: APOState,
        ledger: Ledger,
        evaluator: Evaluator,
        placeholders: Set[str],
        parent: VersionedPromptTemplate,
        batch: List[Any],
        rnd: int,
        label: str,
    ) -> Optional[VersionedPromptTemplate]:
        """Run ``parent`` on ``batch``, critique it, edit it; the new candidate, or None (recorded as discarded)."""
        results, evaluation = await evaluator.evaluate(parent, batch, "train", split="train", round=rnd, label=label)
        state.candidates[parent.version].evaluations.append(evaluation)
        discarded: Dict[str, Any] = {"round": rnd, "parent": parent.version, "critique": None, "rejected_edits": []}
        try:
            critique, critique_prompt = await self.compute_textual_gradient(parent, results)
            if not critique:
                logger.error("%s the critique came back empty; no child from this branch", label)
                state.discarded_edits.append({**discarded, "reason": "empty critique"})
                return None
            text, rejected, edit_prompt = await self.apply_edit(parent, critique, placeholders)
        except Exception as exc:  # an LLM error costs this branch, not the run (unless it is a setup error)
            if getattr(exc, "status_code", None) in _SETUP_ERRORS:
                raise RuntimeError(
                    f"APO's optimiser endpoint refused the call ({type(exc).__name__}: {exc}); check the client's "
                    f"base URL and API key and the models {self.gradient_model!r} / {self.apply_edit_model!r}"
                ) from exc
            logger.error("%s optimiser call failed: %s: %s", label, type(exc).__name__, exc)
            state.discarded_edits.append({**discarded, "reason": f"{type(exc).__name__}: {exc}", "error": True})
            return None
        if text is None:
            logger.error(
                "%s every edit was refused (%s); no child", label, rejected[-1]["problems"] if rejected else ""
            )
            state.discarded_edits.append(
                {**discarded, "critique": critique, "rejected_edits": rejected, "reason": "edits refused"}
            )
            return None
        engine = parent.prompt_template.engine
        version = self._new_version(state, ledger)
        state.candidates[version] = CandidateRecord(
            version=version, template=text, engine=engine, round=rnd, parent=parent.version, critique=critique,
            critique_prompt=critique_prompt, edit_prompt=edit_prompt, rejected_edits=rejected,
        )  # fmt: skip
        logger.info("%s new candidate %s", label, version)
        return VersionedPromptTemplate(version=version, prompt_template=PromptTemplate(template=text, engine=engine))

    # -- the optimiser's LLM calls ----------------------------------------------------------------------------------

    async def _chat(self, model: str, messages: List[Dict[str, Any]]) -> Optional[str]:
        response = await self._client().chat.completions.create(
            model=model, messages=messages, temperature=self.diversity_temperature
        )
        content = response.choices[0].message.content
        return content if isinstance(content, str) else None

    async def compute_textual_gradient(
        self, current_prompt: VersionedPromptTemplate, rollout_results: Sequence[RolloutResult]
    ) -> Tuple[Optional[str], str]:
        """A critique of ``current_prompt`` from (a sample of) its runs, and the name of the prompt used."""
        results = list(rollout_results)
        if len(results) > self.gradient_batch_size:
            results = self._random.sample(results, self.gradient_batch_size)
        prompt = self._random.choice(self.critique_prompts)
        template = current_prompt.prompt_template.template
        messages = prompt.messages(
            {"prompt_template": template, "experiments": format_experiments(results)},
            poml_context={"prompt_template": template, "experiments": [r.as_context() for r in results]},
        )
        return await self._chat(self.gradient_model, messages), prompt.name

    async def apply_edit(
        self, current_prompt: VersionedPromptTemplate, critique: str, placeholders: Optional[Set[str]] = None
    ) -> Tuple[Optional[str], List[Dict[str, Any]], str]:
        """The edited template (None when every try was refused), the refused answers, and the prompt used."""
        template = current_prompt.prompt_template.template
        engine = current_prompt.prompt_template.engine
        expected = placeholders if placeholders is not None else placeholders_of(template, engine)
        prompt = self._random.choice(self.edit_prompts)
        messages = prompt.messages({"prompt_template": template, "critique": critique})
        rejected: List[Dict[str, Any]] = []
        for _ in range(self.max_edit_attempts):
            answer = await self._chat(self.apply_edit_model, messages)
            text = repair_edit(answer, expected, engine)
            problems = template_problems(text, expected, engine)
            if not problems and text.strip() == template.strip():
                problems = ["it is the same as the original template"]
            if not problems:
                return text, rejected, prompt.name
            rejected.append({"text": answer, "problems": problems})
            names = ", ".join("{" + n + "}" for n in sorted(expected)) or "none"
            messages = [
                *messages,
                {"role": "assistant", "content": answer or ""},
                *self.retry_prompt.messages({"problems": "; ".join(problems), "placeholders": names}),
            ]
        return None, rejected, prompt.name

    def _enable_poml_trace(self) -> None:
        try:
            import poml  # type: ignore[import-not-found,import-untyped,unused-ignore]
        except ImportError:
            logger.warning("_poml_trace needs the poml package; ignored")
            return
        poml.set_trace(trace_dir="pomltrace")
