"""Random identifiers."""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["generate_id"]


def generate_id(length: int) -> str:
    """``length`` random lowercase hex characters (at most 40)."""
    if not 0 < length <= 40:
        raise ValueError(f"generate_id length must be in 1..40, got {length}")
    return hashlib.sha1(uuid.uuid4().bytes, usedforsecurity=False).hexdigest()[:length]
