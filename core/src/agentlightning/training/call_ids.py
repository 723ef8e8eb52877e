"""Ids for the tool calls a chat export found recorded without one.

OpenAI's chat fine-tuning format refuses a tool call without an ``id`` (and a tool message whose ``tool_call_id``
answers no call). A call recorded without an id gets ``call_<hex>``, derived from the rollout, the attempt and the
call itself (its position in its message, name, arguments, and how many identical calls came before it in the
conversation): the same call gets the same id in every record of the attempt, where later calls repeat it as history,
and in every export. Tool messages without a ``tool_call_id`` that follow such a message answer its id-less calls in
order.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Optional

__all__ = ["with_call_ids"]


def _synthetic_id(scope: str, position: int, function: Any, occurrence: int) -> str:
    name = function.get("name") if isinstance(function, dict) else None
    arguments = function.get("arguments") if isinstance(function, dict) else None
    key = "\0".join((scope, str(position), str(name), str(arguments), str(occurrence)))
    return "call_" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def with_call_ids(messages: List[Dict[str, Any]], rollout_id: str, attempt_id: Optional[str]) -> List[Dict[str, Any]]:
    """``messages`` (one chat record's) with an id for each tool call recorded without one and the matching
    ``tool_call_id`` on the tool messages answering those calls; ``messages`` itself is not changed."""
    scope = f"{rollout_id}\0{attempt_id or ''}"
    seen: Dict[str, int] = {}  # an id-less call's id as the first such call -> how many came before
    pending: List[str] = []  # synthetic ids of the last assistant message's calls no tool message answered yet
    out: List[Dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            pending = []
            calls = [
                _with_id(call, position, scope, seen, pending) for position, call in enumerate(message["tool_calls"])
            ]
            out.append({**message, "tool_calls": calls})
            continue
        if role == "tool" and message.get("tool_call_id") is None and pending:
            out.append({**message, "tool_call_id": pending.pop(0)})
            continue
        if role != "tool":
            pending = []
        out.append(message)
    return out


def _with_id(call: Any, position: int, scope: str, seen: Dict[str, int], pending: List[str]) -> Any:
    """``call`` with a synthetic id when it has none (appended to ``pending``), counted in ``seen``."""
    if not isinstance(call, dict) or call.get("id") is not None:
        return call
    first = _synthetic_id(scope, position, call.get("function"), 0)
    occurrence = seen.get(first, 0)
    seen[first] = occurrence + 1
    call_id = _synthetic_id(scope, position, call.get("function"), occurrence)
    pending.append(call_id)
    return {**call, "id": call_id}
