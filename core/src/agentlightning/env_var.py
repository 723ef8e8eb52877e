"""Environment variables that configure Agent Lightning, and how a value is resolved from them.

Resolution order: an explicit argument (``override``) > the environment > ``fallback``.
"""

from __future__ import annotations

import enum
import os
from typing import Optional, overload

__all__ = ["LightningEnvVar", "resolve_bool_env_var", "resolve_int_env_var", "resolve_str_env_var"]


class LightningEnvVar(str, enum.Enum):
    """The environment variables Agent Lightning reads (the member's value is the variable's name)."""

    AGL_EMITTER_DEBUG = "AGL_EMITTER_DEBUG"
    """Log the tracer provider's span processors when emitters look it up."""
    AGL_MANAGED_STORE = "AGL_MANAGED_STORE"
    """Whether execution strategies wrap the store they are given (true) or pass it through (false)."""
    AGL_CURRENT_ROLE = "AGL_CURRENT_ROLE"
    """Which side this process runs in the client-server strategy: ``algorithm``, ``runner`` or ``both``."""
    AGL_SERVER_HOST = "AGL_SERVER_HOST"
    """The host the store server binds to (algorithm side) or connects to (runner side)."""
    AGL_SERVER_PORT = "AGL_SERVER_PORT"
    """The store server's port."""


_TRUTHY = frozenset({"1", "true", "yes", "on"})
_FALSY = frozenset({"0", "false", "no", "off"})


@overload
def resolve_bool_env_var(env_var: LightningEnvVar, override: bool, fallback: Optional[bool] = None) -> bool: ...
@overload
def resolve_bool_env_var(env_var: LightningEnvVar, *, fallback: bool) -> bool: ...
@overload
def resolve_bool_env_var(
    env_var: LightningEnvVar, override: Optional[bool] = None, fallback: Optional[bool] = None
) -> Optional[bool]: ...
def resolve_bool_env_var(
    env_var: LightningEnvVar, override: Optional[bool] = None, fallback: Optional[bool] = None
) -> Optional[bool]:
    """``override`` if given, else the variable read as a boolean (1/true/yes/on, 0/false/no/off), else ``fallback``.

    Raises ``ValueError`` naming the variable for any other value.
    """
    if override is not None:
        return override
    raw = os.getenv(env_var.value)
    if raw is None:
        return fallback
    value = raw.strip().lower()
    if value in _TRUTHY:
        return True
    if value in _FALSY:
        return False
    raise ValueError(f"{env_var.value} must be one of {sorted(_TRUTHY)} or {sorted(_FALSY)}, got {raw!r}")


@overload
def resolve_int_env_var(env_var: LightningEnvVar, override: int, fallback: Optional[int] = None) -> int: ...
@overload
def resolve_int_env_var(env_var: LightningEnvVar, *, fallback: int) -> int: ...
@overload
def resolve_int_env_var(
    env_var: LightningEnvVar, override: Optional[int] = None, fallback: Optional[int] = None
) -> Optional[int]: ...
def resolve_int_env_var(
    env_var: LightningEnvVar, override: Optional[int] = None, fallback: Optional[int] = None
) -> Optional[int]:
    """``override`` if given, else the variable as an integer, else ``fallback``; ``ValueError`` if not an integer."""
    if override is not None:
        return override
    raw = os.getenv(env_var.value)
    if raw is None:
        return fallback
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{env_var.value} must be an integer, got {raw!r}") from None


@overload
def resolve_str_env_var(env_var: LightningEnvVar, override: str, fallback: Optional[str] = None) -> str: ...
@overload
def resolve_str_env_var(env_var: LightningEnvVar, *, fallback: str) -> str: ...
@overload
def resolve_str_env_var(
    env_var: LightningEnvVar, override: Optional[str] = None, fallback: Optional[str] = None
) -> Optional[str]: ...
def resolve_str_env_var(
    env_var: LightningEnvVar, override: Optional[str] = None, fallback: Optional[str] = None
) -> Optional[str]:
    """``override`` if given, else the variable's raw value, else ``fallback``."""
    if override is not None:
        return override
    raw = os.getenv(env_var.value)
    return fallback if raw is None else raw
