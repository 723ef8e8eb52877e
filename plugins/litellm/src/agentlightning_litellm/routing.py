"""The proxy's URL scheme: ``/rollout/{rollout_id}/attempt/{attempt_id}/<backend path>``."""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import unquote

import attrs

__all__ = ["RoutedPath", "split_rollout_path", "endpoint_kind"]

_ROLLOUT_PATH = re.compile(r"^/rollout/([^/]+)/attempt/([^/]+)(/.*)?$")


@attrs.frozen
class RoutedPath:
    """A request path with its rollout prefix taken off (ids are None for bare paths)."""

    path: str
    rollout_id: Optional[str] = None
    attempt_id: Optional[str] = None


def split_rollout_path(path: str) -> RoutedPath:
    """``/rollout/r1/attempt/a1/v1/chat/completions`` -> ``RoutedPath("/v1/chat/completions", "r1", "a1")``."""
    match = _ROLLOUT_PATH.match(path)
    if match is None:
        return RoutedPath(path)
    rest = match.group(3) or "/"
    return RoutedPath(rest, unquote(match.group(1)), unquote(match.group(2)))


def endpoint_kind(path: str) -> Optional[str]:
    """Which API a backend path calls: ``chat`` (chat/completions), ``completion``, ``anthropic`` (messages),
    ``responses``; None for anything else."""
    trimmed = path.rstrip("/")
    for suffix, kind in (
        ("/chat/completions", "chat"),
        ("/completions", "completion"),
        ("/messages", "anthropic"),
        ("/responses", "responses"),
    ):
        if trimmed.endswith(suffix):
            return kind
    return None
