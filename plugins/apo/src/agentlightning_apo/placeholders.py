"""Checking an edited template before it is published: same placeholders as its parent, and well formed.

Editing LLMs often drop a placeholder, invent one, escape one (``{{name}}``) or wrap the answer in a code fence.
:func:`clean_edit` undoes the harmless wrapping; :func:`template_problems` lists what is still wrong, and an edit
with problems is never published.
"""

from __future__ import annotations

import re
import string
from typing import List, Optional, Set

from agentlightning.types.resources import PromptTemplate

__all__ = ["clean_edit", "repair_edit", "template_problems", "placeholders_of"]

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*[ \t]*\n(.*?)\n```\s*$", re.DOTALL)


def clean_edit(text: Optional[str]) -> str:
    """The editor's answer without surrounding whitespace or a code fence around the whole of it."""
    if not text:
        return ""
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    return text


def repair_edit(text: Optional[str], expected: Set[str], engine: str) -> str:
    """:func:`clean_edit`, then (f-string templates) un-escape an expected placeholder written as ``{{name}}``."""
    text = clean_edit(text)
    if engine == "f-string":
        for name in expected:
            if "{" + name + "}" not in text.replace("{{" + name + "}}", ""):
                text = text.replace("{{" + name + "}}", "{" + name + "}")
    return text


def placeholders_of(template: str, engine: str) -> Set[str]:
    """The placeholder names of ``template``; raises ValueError when it does not parse."""
    if engine == "f-string":
        names: Set[str] = set()
        for _, field, _, _ in string.Formatter().parse(template):  # raises ValueError on a stray brace
            if field is None:
                continue
            name = re.split(r"[.\[]", field, maxsplit=1)[0]
            if not name or name.isdigit():
                raise ValueError(f"positional field {{{field}}}: placeholders must have names")
            names.add(name)
        return names
    try:
        return PromptTemplate(template=template, engine=engine).placeholders()  # type: ignore[arg-type]
    except NotImplementedError:
        raise
    except Exception as exc:  # jinja syntax errors
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


def _names(names: Set[str]) -> str:
    return ", ".join("{" + n + "}" for n in sorted(names))


def template_problems(candidate: str, expected: Set[str], engine: str) -> List[str]:
    """What keeps ``candidate`` from replacing a template with placeholders ``expected`` (empty: nothing)."""
    if not candidate.strip():
        return ["the revision is empty"]
    try:
        found = placeholders_of(candidate, engine)
    except NotImplementedError:  # an engine we cannot parse (poml): nothing to check
        return []
    except ValueError as exc:
        return [f"it is not a valid {engine} template ({exc}); write literal braces as {{{{ and }}}}"]
    problems = []
    missing = expected - found
    invented = found - expected
    if missing:
        problems.append(f"it drops the placeholder(s) {_names(missing)}")
    if invented:
        problems.append(f"it adds the unknown placeholder(s) {_names(invented)}")
    return problems
