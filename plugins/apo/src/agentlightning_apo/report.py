"""The report files of an APO run: ``<path>.json`` (the whole state) and ``<path>.md`` (for people)."""

from __future__ import annotations

import json
import os
from typing import List, Optional

from .state import APOState, CandidateRecord

__all__ = ["write_report", "render_markdown"]


def _score(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


def _scores(record: CandidateRecord, split: str) -> str:
    values = [e.score for e in record.evaluations if e.split == split]
    return ", ".join(f"{v:.3f}" for v in values) or "-"


def _fence(text: str) -> str:
    ticks = "````" if "```" in text else "```"
    return f"{ticks}\n{text}\n{ticks}"


def render_markdown(state: APOState) -> str:
    summary = state.summary()
    lines: List[str] = [
        f"# APO run `{state.run_name}`",
        "",
        f"- status: {state.status}; rounds done: {state.rounds_done}; candidates: {len(state.candidates)}; "
        f"edits discarded: {len(state.discarded_edits)}",
        f"- optimised resource: `{state.resource_name}`",
        f"- seed `{summary['seed_version']}` full-validation score: {_score(summary['seed_score'])}",
        f"- best `{state.best_version}` full-validation score: {_score(state.best_score)}",
        "",
        "## Best prompt",
        "",
        _fence(summary["best_template"] or ""),
        "",
        "## Rounds",
        "",
        "| round | children | beam (val batch score) | leader full-val | best so far |",
        "|---|---|---|---|---|",
    ]
    for r in state.rounds:
        beam = ", ".join(f"{b['version']} {_score(b['score'])}" for b in r.beam)
        lines.append(
            f"| {r.round} | {', '.join(r.children) or '-'} | {beam} | {r.leader} {_score(r.leader_score)} | "
            f"{r.best_version} {_score(r.best_score)}{' (new)' if r.improved else ''} |"
        )
    lines += [
        "",
        "## Candidates",
        "",
        "| version | parent | round | train scores | val batch scores | full-val scores | rejected edits |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in state.candidates.values():
        lines.append(
            f"| {c.version} | {c.parent or '-'} | {c.round} | {_scores(c, 'train')} | {_scores(c, 'val_batch')} | "
            f"{_scores(c, 'val_full')} | {len(c.rejected_edits)} |"
        )
    for c in state.candidates.values():
        lines += ["", f"### {c.version}", "", _fence(c.template)]
        if c.critique:
            lines += ["", f"Critique ({c.critique_prompt}) that led to it:", "", _fence(c.critique)]
        for rejected in c.rejected_edits:
            lines += ["", f"Rejected edit: {'; '.join(rejected.get('problems', []))}"]
    return "\n".join(lines) + "\n"


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_report(state: APOState, path: str) -> tuple[str, str]:
    """Write ``<path>.json`` and ``<path>.md`` (creating folders); returns both paths."""
    base = path[:-5] if path.endswith(".json") else path[:-3] if path.endswith(".md") else path
    folder = os.path.dirname(os.path.abspath(base))
    os.makedirs(folder, exist_ok=True)
    json_path, md_path = base + ".json", base + ".md"
    payload = {"summary": state.summary(), "state": state.to_dict()}
    _write_atomically(json_path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    _write_atomically(md_path, render_markdown(state))
    return json_path, md_path
