"""What server and client agree on: JSON encoding, route prefixes, headers and how errors travel.

Errors travel as ``{"detail": str, "error_type": str}`` with a 4xx/5xx status. ``error_type`` is the name of the
raised class when the client knows it (see :data:`KNOWN_ERRORS`), else that of its nearest known base class, so the
client re-raises the very type a local store would have raised.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Tuple, Type

import orjson
from agentlightning.store.errors import (
    ERROR_TYPES,
    InvalidRequestError,
    NotFoundError,
    SpansEvictedError,
    StoreClosedError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from agentlightning.types.codegen import dict_encoder
from agentlightning.types.serialization import ValidationError, to_dict
from agentlightning.types.tracer import Span

API_PREFIX = "/v1/agl"
OTLP_TRACES_PATH = "/v1/traces"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TOKEN_ENV = "AGL_STORE_TOKEN"  # noqa: S105 - the variable's name, not a token
JSON_TYPE = "application/json"


class AuthenticationError(StoreError, PermissionError):
    """A missing or wrong bearer token."""


KNOWN_ERRORS: Dict[str, Type[BaseException]] = {
    **ERROR_TYPES,
    "ValidationError": ValidationError,
    "AuthenticationError": AuthenticationError,
    "ValueError": ValueError,
    "TypeError": TypeError,
    "KeyError": KeyError,
    "LookupError": LookupError,
    "IndexError": IndexError,
    "RuntimeError": RuntimeError,
    "NotImplementedError": NotImplementedError,
    "PermissionError": PermissionError,
    "TimeoutError": TimeoutError,
}
"""Exception classes that cross the wire by name."""

# Most specific first: the first class an exception is an instance of decides its HTTP status.
_STATUS_BY_CLASS: Tuple[Tuple[Type[BaseException], int], ...] = (
    (AuthenticationError, 401),
    (NotFoundError, 404),
    (SpansEvictedError, 410),
    (StoreClosedError, 503),
    (StoreUnavailableError, 503),
    (StoreCorruptError, 500),
    (InvalidRequestError, 400),
    (ValidationError, 400),
    (ValueError, 400),
    (TypeError, 400),
    (LookupError, 404),
    (NotImplementedError, 501),
    (TimeoutError, 504),
)


def error_type_name(exc: BaseException) -> str:
    """The name of the most specific class of ``exc`` that the client can rebuild."""
    for cls in type(exc).__mro__:
        if KNOWN_ERRORS.get(cls.__name__) is cls:
            return cls.__name__
    return "StoreError"


def error_status(exc: BaseException) -> int:
    for cls, status in _STATUS_BY_CLASS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(detail: str, error_type: str) -> Dict[str, str]:
    return {"detail": detail, "error_type": error_type}


def exception_from_error(status: int, body: Any, fallback: str = "") -> BaseException:
    """The exception a client raises for an error response."""
    detail = fallback
    name: Optional[str] = None
    if isinstance(body, dict):
        detail = str(body.get("detail") or fallback)
        raw = body.get("error_type")
        name = raw if isinstance(raw, str) else None
    cls = KNOWN_ERRORS.get(name or "")
    if cls is None:
        if status in (401, 403):
            cls = AuthenticationError
        elif status == 404:
            cls = NotFoundError
        elif 400 <= status < 500:
            cls = InvalidRequestError
        else:
            cls = StoreError
    message = f"{detail} (HTTP {status})" if detail else f"HTTP {status}"
    if cls is KeyError:
        return KeyError(detail)
    return cls(message)


def span_dict(span: Any) -> Any:
    """``to_dict(span)``: for a plain :class:`Span`, the generated encoder, which shares the span's dicts instead of
    rebuilding them (the same JSON once encoded, for the JSON-ready values a store keeps)."""
    if type(span) is Span:
        return dict_encoder(Span)(span)
    return to_dict(span)


def encode_span(span: Any) -> bytes:
    """``dumps(to_dict(span))``, through :func:`span_dict`; a span holding values only the converter turns into JSON
    (attrs instances in its attributes, say) goes through the converter."""
    try:
        return orjson.dumps(span_dict(span), option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return dumps(to_dict(span))


def dumps(data: Any) -> bytes:
    """JSON bytes; orjson for speed, the standard library for what orjson refuses (huge ints, odd keys)."""
    try:
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(data, separators=(",", ":")).encode()


_DIGIT_MAP = bytes(48 if 48 <= byte < 58 else 120 for byte in range(256))
"""Digits to ``0``, every other byte to ``x``: long digit runs are then found by a fast substring search."""
_RUN = b"0" * 19
_NUMBER_START = frozenset(b":,[ \t\r\n")


def has_long_digits(data: bytes) -> bool:
    """Whether ``data`` may hold an integer beyond 64 bits (19+ digits after ``-``, 20+ otherwise, where a JSON
    number starts), which orjson would read as a float; digit runs inside strings (hex ids) do not count."""
    if len(data) < 19:
        return False
    mapped = data.translate(_DIGIT_MAP)
    start = mapped.find(_RUN)
    while start >= 0:
        end = start + 19
        while end < len(mapped) and mapped[end] == 48:
            end += 1
        before = data[start - 1] if start else 32
        if before == 45:  # "-": a negative number of 19+ digits
            before = data[start - 2] if start > 1 else 32
            if before in _NUMBER_START:
                return True
        elif end - start >= 20 and before in _NUMBER_START:
            return True
        start = mapped.find(_RUN, end)
    return False


def loads(data: bytes, long_digits: Optional[bool] = None) -> Any:
    """Parse JSON; raises ``ValueError`` on malformed input. Integers beyond 64 bits are read exactly (as ints), so
    that the store can refuse them rather than keep a rounded float. ``long_digits``: what :func:`has_long_digits`
    says of ``data``, when the caller has asked already."""
    value = orjson.loads(data)
    if has_long_digits(data) if long_digits is None else long_digits:
        try:
            value = json.loads(data)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
    return value
