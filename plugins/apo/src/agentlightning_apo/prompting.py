"""The optimiser's own prompts: files that render to chat messages, and the text shown to them about rollouts.

A prompt file is plain text split into messages by lines ``<<<system>>>`` / ``<<<user>>>`` / ``<<<assistant>>>``;
``{{name}}`` marks where a value goes (nothing else is special, so templates full of braces pass through intact).
A file whose name ends in ``.poml`` is rendered by the optional ``poml`` package instead.
"""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import attrs

__all__ = [
    "PromptFile",
    "RolloutResult",
    "BUILTIN_CRITIQUE_PROMPTS",
    "BUILTIN_EDIT_PROMPTS",
    "RETRY_PROMPT",
    "format_experiments",
    "load_prompts",
]

BUILTIN_CRITIQUE_PROMPTS = ("critique_bullets", "critique_mechanism", "critique_checklist")
BUILTIN_EDIT_PROMPTS = ("edit_full", "edit_conservative")
RETRY_PROMPT = "edit_retry"

_MARKER = re.compile(r"^<<<(system|user|assistant)>>>[ \t]*$", re.MULTILINE)
_SLOT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

PromptSource = Union[str, "os.PathLike[str]", "PromptFile"]


@attrs.frozen
class PromptFile:
    """One prompt: its name, its text, and the file it came from (None for text given directly)."""

    name: str
    text: str
    path: Optional[str] = None

    @property
    def is_poml(self) -> bool:
        return self.path is not None and self.path.endswith(".poml")

    @classmethod
    def load(cls, source: PromptSource) -> PromptFile:
        """A built-in prompt by name (``"edit_full"``), or a file path (``.md``/``.txt``, or ``.poml``)."""
        if isinstance(source, PromptFile):
            return source
        text = os.fspath(source)
        if text in (*BUILTIN_CRITIQUE_PROMPTS, *BUILTIN_EDIT_PROMPTS, RETRY_PROMPT):
            body = resources.files("agentlightning_apo").joinpath("prompts").joinpath(f"{text}.md").read_text("utf-8")
            return cls(name=text, text=body)
        if not os.path.isfile(text):
            raise FileNotFoundError(
                f"prompt {text!r} is neither a built-in prompt "
                f"({', '.join((*BUILTIN_CRITIQUE_PROMPTS, *BUILTIN_EDIT_PROMPTS))}) nor an existing file"
            )
        with open(text, encoding="utf-8") as f:
            body = f.read()
        prompt = cls(name=os.path.splitext(os.path.basename(text))[0], text=body, path=os.path.abspath(text))
        if not prompt.is_poml:
            prompt.messages({})  # fail now, not in the middle of a run, on a file without messages
        return prompt

    def slots(self) -> set[str]:
        """The ``{{name}}`` slots the prompt fills."""
        return set(_SLOT.findall(self.text))

    def messages(
        self, context: Mapping[str, Any], poml_context: Optional[Mapping[str, Any]] = None
    ) -> List[Dict[str, Any]]:
        """The chat messages with ``context`` filled in (values are turned into text with ``str``)."""
        if self.is_poml:
            return _render_poml(self, poml_context if poml_context is not None else context)

        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            return str(context[key]) if key in context else match.group(0)

        parts = _MARKER.split(self.text)
        if len(parts) < 3 or parts[0].strip():
            raise ValueError(
                f"prompt {self.name!r}: expected sections that start with a <<<system>>> or <<<user>>> line"
            )
        out = []
        for role, body in zip(parts[1::2], parts[2::2], strict=True):
            content = _SLOT.sub(fill, body.strip("\n")).strip()
            if content:
                out.append({"role": role, "content": content})
        return out


def _render_poml(prompt: PromptFile, context: Mapping[str, Any]) -> List[Dict[str, Any]]:
    try:
        import poml  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError as exc:
        raise ImportError(
            f"prompt {prompt.path} is a POML file, which needs the poml package: pip install 'agentlightning-apo[poml]'"
        ) from exc
    rendered = poml.poml(prompt.path, context=dict(context), format="openai_chat")
    messages = rendered.get("messages") if isinstance(rendered, dict) else rendered
    if not isinstance(messages, list):
        raise ValueError(f"POML prompt {prompt.path} did not render to a list of chat messages")
    return messages


def load_prompts(sources: Optional[Sequence[PromptSource]], defaults: Sequence[str], what: str) -> List[PromptFile]:
    """Load the given prompt sources (or the built-in ``defaults``), refusing an empty list."""
    chosen = list(defaults) if sources is None else list(sources)
    if not chosen:
        raise ValueError(f"APO needs at least one {what} prompt")
    return [PromptFile.load(s) for s in chosen]


@attrs.define(kw_only=True)
class RolloutResult:
    """What the optimiser learns from one rollout: its status, final reward and conversation."""

    rollout_id: str
    status: str
    final_reward: Optional[float]
    messages: List[Dict[str, Any]] = attrs.field(factory=list)
    """The adapter's records (``TraceToMessages``): one ``{"messages", "tools"}`` per LLM call."""

    def as_context(self) -> Dict[str, Any]:
        """A JSON-friendly dict (the POML context item)."""
        return {"status": self.status, "final_reward": self.final_reward, "messages": self.messages}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 20] + f" ... [{len(text) - limit + 20} chars cut]"


def _message_line(message: Mapping[str, Any], limit: int) -> str:
    content = message.get("content")
    if not isinstance(content, str):
        content = "" if content is None else json.dumps(content, ensure_ascii=False)
    line = f"[{message.get('role', '?')}] {_clip(content, limit)}".rstrip()
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        line += f"\n  -> calls {fn.get('name')}({_clip(str(fn.get('arguments') or ''), limit)})"
    return line


def _conversation(records: Sequence[Mapping[str, Any]], limit: int) -> List[str]:
    """Each record repeats the conversation so far: show only what each call adds."""
    lines: List[str] = []
    shown: List[Any] = []
    for record in records:
        messages = list(record.get("messages") or [])
        if messages[: len(shown)] == shown:
            new = messages[len(shown) :]
        else:
            lines.append("(another LLM call)")
            new = messages
        lines.extend(_message_line(m, limit) for m in new)
        shown = messages
    return lines


def format_experiments(results: Sequence[RolloutResult], *, message_chars: int = 1500, total_chars: int = 6000) -> str:
    """The rollouts as text for the critique prompt."""
    blocks = []
    for i, result in enumerate(results, 1):
        reward = "none" if result.final_reward is None else f"{result.final_reward:g}"
        head = f"### Run {i}: status {result.status}, final reward {reward}"
        body = "\n".join(_conversation(result.messages, message_chars)) or "(no LLM calls were recorded)"
        blocks.append(head + "\n" + _clip(body, total_chars))
    return "\n\n".join(blocks) if blocks else "(no runs)"
