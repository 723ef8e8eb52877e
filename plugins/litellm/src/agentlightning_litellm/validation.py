"""Checks of request bodies the gateway makes before calling the backend: a malformed request is answered 400 with an
OpenAI-style error (which clients do not retry) instead of reaching LiteLLM, whose conversions crash on it (500,
retried) or quietly send something else (a missing ``messages`` sent as ``[]``)."""

from __future__ import annotations

from typing import Any, Dict, Optional

__all__ = ["check_chat_request"]

_CONTENT_TYPES = (str, list, type(None))


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "null" if value is None else type(value).__name__


def check_chat_request(body: Dict[str, Any]) -> Optional[str]:
    """What is wrong with a chat-completions body (OpenAI's wording where it has one), or None."""
    if "messages" not in body:
        return "Missing required parameter: 'messages'."
    messages = body["messages"]
    if not isinstance(messages, list):
        return f"Invalid type for 'messages': expected an array of objects, but got {_kind(messages)} instead."
    if not messages:
        return (
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"Invalid type for 'messages[{i}]': expected an object, but got {_kind(message)} instead."
        role = message.get("role")
        if not isinstance(role, str):
            if role is None:
                return f"Missing required parameter: 'messages[{i}].role'."
            return f"Invalid type for 'messages[{i}].role': expected a string, but got {_kind(role)} instead."
        content = message.get("content")
        if not isinstance(content, _CONTENT_TYPES):
            return (
                f"Invalid type for 'messages[{i}].content': expected one of a string or array of objects, but got "
                f"{_kind(content)} instead."
            )
    return None
