"""A scripted OpenAI-compatible "world" for the APO tests: the room-selector agent's model and APO's optimiser.

The agent's model (``agent-model``) calls the tool, then answers. It follows the booking policy (the smallest
feasible room) only when the prompt says "smallest"; otherwise it takes the first free room that seats everyone,
ignoring equipment. The critic (``critic-model``) always suggests stating the policy; the editor
(``editor-model``) first answers with a template that drops ``{needs}``, and with :data:`GOOD_PROMPT` once told
its answer could not be used (and polishes :data:`GOOD_PROMPT` without changing what it scores). So exactly one
kind of edit raises the validation score, and only after a retry.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List

from agentlightning.testing.openai_server import ErrorReply, HandlerResult, Reply, ToolCall

EXAMPLE_DIR = Path(__file__).resolve().parents[3] / "contrib" / "examples" / "room_selector"
if str(EXAMPLE_DIR) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_DIR))

import room_selector as rs  # noqa: E402

SEED_PROMPT = rs.SEED_PROMPT
GOOD_PROMPT = (
    "Find a room for a meeting on {date} at {time} for {duration_min} minutes with {attendees} people. "
    "They need: {needs}. Check availability with the tool, then book the smallest free room that seats everyone and "
    "has everything they need. End with 'Final answer: <room id>'."
)
DROPPED_PROMPT = (
    "Find a room on {date} at {time} for {duration_min} minutes with {attendees} people. "
    "Book the smallest free room. End with 'Final answer: <room id>'."
)
CRITIQUE = (
    "- State the policy: the smallest free room that seats everyone and has every need.\n- Fix the answer format."
)

_NEED_WORDS = {"projector": "projector", "whiteboard": "whiteboard", "video": "video", "wheelchair": "accessible"}


def _text(message: Dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


class World:
    """The handler of the test server; counts calls per model."""

    def __init__(self) -> None:
        self.calls: Dict[str, int] = {}
        self.lock = threading.Lock()

    def count(self, model: str) -> int:
        with self.lock:
            return self.calls.get(model, 0)

    def __call__(self, body: Dict[str, Any]) -> HandlerResult:
        model = str(body.get("model"))
        with self.lock:
            self.calls[model] = self.calls.get(model, 0) + 1
        messages: List[Dict[str, Any]] = body.get("messages") or []
        if model == "agent-model":
            return self.agent(messages)
        if model == "critic-model":
            return CRITIQUE
        if model == "editor-model":
            users = [_text(m) for m in messages if m.get("role") == "user"]
            if GOOD_PROMPT in users[0]:  # polishing the good prompt
                return GOOD_PROMPT + " Double-check the capacity."
            retried = any("cannot be used" in text for text in users)
            return GOOD_PROMPT if retried else f"```\n{DROPPED_PROMPT}\n```"
        if model == "broken-model":
            return ErrorReply(500, "the model crashed", "server_error")
        return ErrorReply(404, f"unknown model {model}", "not_found_error")

    @staticmethod
    def agent(messages: List[Dict[str, Any]]) -> HandlerResult:
        user = next(_text(m) for m in messages if m.get("role") == "user")
        tools = [m for m in messages if m.get("role") == "tool"]
        if not tools:
            date = re.search(r"\d{4}-\d{2}-\d{2}", user)
            time = re.search(r"\b\d{2}:\d{2}\b", user)
            duration = re.search(r"(\d+) minutes", user)
            assert date and time and duration, user
            args = {"date": date.group(0), "time": time.group(0), "duration_min": int(duration.group(1))}
            return Reply(tool_calls=[ToolCall("get_rooms_and_availability", args)])
        rooms = json.loads(_text(tools[-1]))
        people = re.search(r"(\d+) people", user)
        attendees = int(people.group(1)) if people else 1
        needs = [need for word, need in _NEED_WORDS.items() if word in user.lower()]
        free = [r for r in rooms if r["free"] and r["capacity"] >= attendees]
        if "smallest" in user:
            free = [r for r in free if rs._fits(r, attendees, needs)]
            free.sort(key=lambda r: (r["capacity"], r["id"]))
        if not free:
            return "No room fits."
        return f"I would take {free[0]['name']}. Final answer: {free[0]['id']}"


def expected_score(tasks: List[Dict[str, Any]], template: str) -> float:
    """What the scripted agent scores with ``template`` on ``tasks`` (its choices are deterministic)."""
    total = 0.0
    for task in tasks:
        user = template.format(**rs.task_fields(task))
        rooms = rs.get_rooms_and_availability(task["date"], task["time"], task["duration_min"])
        tool = {"role": "tool", "content": json.dumps(rooms)}
        answer = World.agent([{"role": "user", "content": user}, tool])
        total += rs.grade(task, rs.parse_choice(answer if isinstance(answer, str) else None))
    return total / len(tasks)


def hard_val_tasks(n: int) -> List[Dict[str, Any]]:
    """Validation tasks the seed prompt gets wrong: any batch of them ranks an improved prompt above the seed."""
    tasks = [t for t in rs.load_tasks("val") if expected_score([t], SEED_PROMPT) < 1.0][:n]
    assert len(tasks) == n
    return tasks
