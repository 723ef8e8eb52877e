"""Capture health: do rollouts produce LLM spans, and do those spans carry token ids?

Used by :class:`CaptureCheck` (a runner hook the :class:`~agentlightning.Trainer` adds: it warns once, after the
first rollouts) and by ``agl doctor`` (the installed LLM libraries, and the spans of a store's latest rollouts).
Training on rollouts without LLM spans or token ids otherwise fails late, with empty triplets.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import attrs

from agentlightning.runner.hooks import Hook

if TYPE_CHECKING:
    from agentlightning.litagent.litagent import LitAgent
    from agentlightning.runner.base import Runner
    from agentlightning.types.core import AttemptedRollout

__all__ = ["CaptureReport", "diagnose", "CaptureCheck", "library_status", "DOCS"]

logger = logging.getLogger(__name__)

DOCS = "docs/tracing.md, section Capture health"
_LLM_SPAN = re.compile(
    r"openai\.chat\.completion|openai\.completion$|openai\.responses$|anthropic\.messages$"
    r"|google_genai\.generate_content$|litellm_request$"
)
_LIBRARIES = {"openai": "openai", "anthropic": "anthropic", "litellm": "litellm", "google-genai": "google.genai"}


@attrs.define
class CaptureReport:
    """What the spans of some rollouts say about capture; ``problems`` name the likely cause and the fix."""

    rollouts: int = 0
    rollouts_without_llm_spans: int = 0
    llm_spans: int = 0
    llm_spans_with_token_ids: int = 0
    protocols_without_token_ids: List[str] = attrs.field(factory=list)
    other_spans: List[str] = attrs.field(factory=list)

    @property
    def problems(self) -> List[str]:
        out: List[str] = []
        if self.rollouts and self.llm_spans == 0:
            seen = f" (spans seen: {', '.join(sorted(set(self.other_spans))[:8])})" if self.other_spans else ""
            out.append(
                f"no LLM spans in {self.rollouts} rollout(s){seen}. Likely cause: the agent's LLM client is not "
                "instrumented (a library other than openai, anthropic, litellm or google-genai; a tracer created "
                "with instrument=False; a client that talks HTTP itself; or `from litellm import completion` run "
                "before the tracer started, which keeps the unpatched function: call litellm.completion instead). "
                "Fix: use one of those clients, or point the agent at the LLM proxy (agl.LLMProxy) which records "
                f"every call. See {DOCS}."
            )
        elif self.rollouts_without_llm_spans:
            out.append(
                f"{self.rollouts_without_llm_spans} of {self.rollouts} rollout(s) made no traced LLM call. See {DOCS}."
            )
        if self.llm_spans and self.llm_spans_with_token_ids == 0:
            if self.protocols_without_token_ids:
                cause = (
                    f"the {', '.join(sorted(set(self.protocols_without_token_ids)))} protocol carries no token ids. "
                    "Fix: point the agent at the LLM proxy (agl.LLMProxy), which asks a vLLM backend for them"
                )
            else:
                cause = (
                    "the backend did not return them. Fix: with vLLM pass extra_body={'return_token_ids': True} "
                    "(chat and text completions), or point the agent at the LLM proxy (agl.LLMProxy)"
                )
            out.append(
                f"none of {self.llm_spans} LLM span(s) has token ids, so training algorithms that need them (VERL) "
                f"get empty triplets. Likely cause: {cause}. See {DOCS}."
            )
        return out


def _attributes(span: Any) -> Dict[str, Any]:
    attributes = getattr(span, "attributes", None)
    return dict(attributes) if attributes else {}


def diagnose(rollouts: Sequence[Sequence[Any]]) -> CaptureReport:
    """A report over the spans of each rollout (stored :class:`~agentlightning.types.tracer.Span` or OTel spans)."""
    report = CaptureReport()
    for spans in rollouts:
        report.rollouts += 1
        found = 0
        for span in spans:
            name = str(getattr(span, "name", ""))
            attributes = _attributes(span)
            if not _LLM_SPAN.search(name):
                if name and len(report.other_spans) < 50:
                    report.other_spans.append(name)
                continue
            found += 1
            report.llm_spans += 1
            if attributes.get("prompt_token_ids") and attributes.get("response_token_ids"):
                report.llm_spans_with_token_ids += 1
            elif attributes.get("agentlightning.token_ids") == "none in protocol":
                report.protocols_without_token_ids.append(f"{attributes.get('gen_ai.system', '?')} ({name})")
        if found == 0:
            report.rollouts_without_llm_spans += 1
    return report


class CaptureCheck(Hook):
    """Warns once, after the first ``after`` rollouts of this runner, when they produced no LLM spans or no token
    ids; then stays quiet."""

    def __init__(self, after: int = 2, *, need_token_ids: bool = True) -> None:
        self.after = after
        self.need_token_ids = need_token_ids
        self._seen: List[Sequence[Any]] = []
        self.report: Optional[CaptureReport] = None

    async def on_rollout_end(
        self,
        *,
        agent: LitAgent[Any],
        runner: Runner[Any],
        rollout: AttemptedRollout,
        spans: Sequence[Any],
    ) -> None:
        if self.report is not None:
            return
        self._seen.append(list(spans))
        if len(self._seen) < self.after:
            return
        self.report = diagnose(self._seen)
        self._seen = []
        problems = self.report.problems
        if not self.need_token_ids:
            problems = [p for p in problems if "token ids" not in p]
        for problem in problems:
            logger.warning("Capture check: %s", problem)


def library_status() -> List[Dict[str, Any]]:
    """Each supported LLM library: installed or not, its version, and whether the default tracer patches it."""
    from importlib import metadata, util

    out = []
    for dist, module in _LIBRARIES.items():
        try:
            version: Optional[str] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = None
        try:
            importable = util.find_spec(module) is not None
        except (ImportError, ValueError):
            importable = False
        out.append(
            {
                "library": dist,
                "version": version,
                "installed": importable,
                "captured": "on import" if importable else "-",
            }
        )
    return out
