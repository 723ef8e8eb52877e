"""The room-selector agent: plain ``openai`` client code that books a meeting room with one tool.

The agent fills its prompt template with the task, lets the model call ``get_rooms_and_availability`` and reads the
room id from the model's final answer. The grader needs no LLM: 1.0 for the room the booking policy picks (the
smallest free room that fits everyone and has everything asked for), 0.5 for another room that would do, 0 otherwise.
The seed prompt never states that policy, so there is something for APO to find.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Dict, List, Optional

import agentlightning as agl

__all__ = [
    "ROOMS",
    "NEEDS",
    "SEED_PROMPT",
    "TOOL_SPEC",
    "room_selector",
    "get_rooms_and_availability",
    "feasible_rooms",
    "best_room",
    "grade",
    "parse_choice",
    "run_tool",
    "task_fields",
    "load_tasks",
    "DATA_DIR",
]

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

ROOMS: List[Dict[str, Any]] = [
    {"id": "R1", "name": "Pine", "capacity": 4, "equipment": ["whiteboard"], "accessible": True},
    {"id": "R2", "name": "Cedar", "capacity": 6, "equipment": ["projector", "whiteboard"], "accessible": False},
    {"id": "R3", "name": "Birch", "capacity": 8, "equipment": ["video", "whiteboard"], "accessible": True},
    {"id": "R4", "name": "Maple", "capacity": 10, "equipment": ["projector", "video"], "accessible": True},
    {"id": "R5", "name": "Oak", "capacity": 12, "equipment": ["projector", "video", "whiteboard"], "accessible": False},
    {"id": "R6", "name": "Spruce", "capacity": 16, "equipment": ["projector", "video"], "accessible": True},
    {
        "id": "R7",
        "name": "Redwood",
        "capacity": 24,
        "equipment": ["projector", "video", "whiteboard"],
        "accessible": True,
    },
]
NEEDS = ("projector", "whiteboard", "video", "accessible")

SEED_PROMPT = (
    "Find a room for a meeting on {date} at {time} for {duration_min} minutes with {attendees} people. "
    "They need: {needs}. Which room should we book?"
)

TOOL_SPEC: Dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_rooms_and_availability",
        "description": "All meeting rooms with capacity, equipment, wheelchair access, and whether each is free for "
        "the whole meeting.",
        "parameters": {
            "type": "object",
            "properties": {
                "date": {"type": "string", "description": "YYYY-MM-DD"},
                "time": {"type": "string", "description": "HH:MM, 24-hour clock"},
                "duration_min": {"type": "integer", "description": "meeting length in minutes"},
            },
            "required": ["date", "time", "duration_min"],
        },
    },
}


def _booked(room_id: str, date: str, hour: int) -> bool:
    """The (fixed, made-up) calendar: about a third of room-hours are taken."""
    digest = hashlib.sha256(f"{room_id}|{date}|{hour}".encode()).digest()
    return digest[0] < 90


def get_rooms_and_availability(date: str, time: str, duration_min: int) -> List[Dict[str, Any]]:
    """The tool: every room, with ``free`` telling whether it is free from ``time`` for ``duration_min``."""
    try:
        hour, minute = (int(x) for x in str(time).split(":", 1))
        duration = int(duration_min)
    except ValueError as exc:
        raise ValueError(f"time must be HH:MM and duration_min an integer, got {time!r}, {duration_min!r}") from exc
    start = hour * 60 + minute
    hours = range(start // 60, (start + max(duration, 1) - 1) // 60 + 1)
    return [{**room, "free": not any(_booked(room["id"], date, h) for h in hours)} for room in ROOMS]


def _fits(room: Dict[str, Any], attendees: int, needs: List[str]) -> bool:
    if room["capacity"] < attendees:
        return False
    if "accessible" in needs and not room["accessible"]:
        return False
    return all(n in room["equipment"] for n in needs if n != "accessible")


def feasible_rooms(task: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Free rooms that fit the task, smallest first (ties by id)."""
    rooms = get_rooms_and_availability(task["date"], task["time"], task["duration_min"])
    ok = [r for r in rooms if r["free"] and _fits(r, task["attendees"], task["needs"])]
    return sorted(ok, key=lambda r: (r["capacity"], r["id"]))


def best_room(task: Dict[str, Any]) -> Optional[str]:
    """What the booking policy picks: the smallest feasible room."""
    rooms = feasible_rooms(task)
    return rooms[0]["id"] if rooms else None


def grade(task: Dict[str, Any], choice: Optional[str]) -> float:
    if choice is None:
        return 0.0
    if choice == task["expected_choice"]:
        return 1.0
    return 0.5 if choice in {r["id"] for r in feasible_rooms(task)} else 0.0


_FINAL = re.compile(r"final answer\W*\**\s*(R\d+)\b", re.IGNORECASE)
_ROOM = re.compile(r"\b(R\d+)\b")


def parse_choice(answer: Optional[str]) -> Optional[str]:
    """The room in ``Final answer: R3``, else the first room id the answer mentions."""
    if not answer:
        return None
    final = _FINAL.search(answer)
    if final:
        return final.group(1).upper()
    first = _ROOM.search(answer)
    return first.group(1) if first else None


def task_fields(task: Dict[str, Any]) -> Dict[str, Any]:
    """The values the prompt template may use."""
    needs = ", ".join("wheelchair access" if n == "accessible" else n for n in task["needs"]) or "nothing special"
    return {
        "date": task["date"],
        "time": task["time"],
        "duration_min": task["duration_min"],
        "attendees": task["attendees"],
        "needs": needs,
    }


def load_tasks(split: str) -> List[Dict[str, Any]]:
    """The bundled ``train`` or ``val`` tasks."""
    path = os.path.join(DATA_DIR, f"{split}.jsonl")
    if not os.path.isfile(path):
        raise ValueError(f"no split {split!r}: expected {path}")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run_tool(call: Any) -> Any:
    """The result of one tool call, or an error the model can read."""
    function = getattr(call, "function", None)
    if function is None or function.name != "get_rooms_and_availability":
        return {"error": "unknown tool; the only tool is get_rooms_and_availability"}
    try:
        args = json.loads(function.arguments or "{}")
        return get_rooms_and_availability(args["date"], args["time"], args["duration_min"])
    except (ValueError, KeyError, TypeError) as exc:
        return {"error": f"bad arguments: {exc}"}


@agl.rollout
async def room_selector(task: Dict[str, Any], prompt_template: agl.PromptTemplate, llm: agl.LLM) -> float:
    """Ask the model to book a room for ``task`` with the tool; the reward grades its final choice."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(
        base_url=llm.endpoint, api_key=llm.api_key or os.environ.get("OPENAI_API_KEY") or "none", max_retries=2
    )
    messages: List[Dict[str, Any]] = [{"role": "user", "content": prompt_template.format(**task_fields(task))}]
    answer: Optional[str] = None
    try:
        for _ in range(4):
            response = await client.chat.completions.create(
                model=llm.model,
                messages=messages,  # type: ignore[arg-type]
                tools=[TOOL_SPEC],  # type: ignore[list-item]
                **llm.sampling_parameters,
            )
            message = response.choices[0].message
            if not message.tool_calls:
                answer = message.content
                break
            messages.append(message.model_dump(exclude_none=True))
            for call in message.tool_calls:
                messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(run_tool(call))})
    finally:
        await client.close()
    return grade(task, parse_choice(answer))
