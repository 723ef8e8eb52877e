"""``ValueStrEnum``: a ``str`` Enum that behaves as its value everywhere a plain string would be used."""

from __future__ import annotations

import enum


class ValueStrEnum(str, enum.Enum):
    """Members are ``str`` instances equal to, hashing as, and formatting as their value.

    Upstream v0.3 code reads ``Member.value`` and iterates the class; this package's code uses the members directly
    as attribute keys and span names (``f"{LightningSpanAttributes.REWARD}.0"``), so both work.
    """

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)

    def __hash__(self) -> int:
        return hash(self.value)

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return str.__ne__(self, other)
