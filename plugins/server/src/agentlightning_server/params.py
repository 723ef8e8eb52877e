"""Typed reading of request bodies and query strings: every bad value becomes a 400 that names the field."""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional

from agentlightning.store.errors import InvalidRequestError

__all__ = ["BadInput", "Kind", "read_json_args", "read_query_args", "require_object", "K"]


class BadInput(InvalidRequestError):
    """A request whose body or query string does not have the expected shape."""


Kind = Callable[[str, Any], Any]
"""A checker: ``kind(field_name, raw_value) -> value`` or raise :class:`BadInput`."""


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _nullable(inner: Kind) -> Kind:
    def check(name: str, value: Any) -> Any:
        return None if value is None else inner(name, value)

    return check


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{name}: expected a string, got {_type_name(value)}")
    return value


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{name}: expected an integer, got {_type_name(value)}")
    return int(value)


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(f"{name}: expected a number, got {_type_name(value)}")
    return float(value)


def _str_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInput(f"{name}: expected a list of strings, got {_type_name(value)}")
    return value


def _optional_str_list(name: str, value: Any) -> list[Optional[str]]:
    if not isinstance(value, list) or not all(v is None or isinstance(v, str) for v in value):
        raise BadInput(f"{name}: expected a list of strings or nulls, got {_type_name(value)}")
    return value


def _dict(name: str, value: Any) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInput(f"{name}: expected an object, got {_type_name(value)}")
    return value


def _list(name: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise BadInput(f"{name}: expected a list, got {_type_name(value)}")
    return value


def _any(name: str, value: Any) -> Any:
    return value


class K:
    """The checkers, by the JSON shape they accept (``_`` suffix: null allowed)."""

    str = staticmethod(_str)
    str_ = staticmethod(_nullable(_str))
    int = staticmethod(_int)
    float_ = staticmethod(_nullable(_float))
    str_list = staticmethod(_str_list)
    str_list_ = staticmethod(_nullable(_str_list))
    optional_str_list_ = staticmethod(_nullable(_optional_str_list))
    dict = staticmethod(_dict)
    dict_ = staticmethod(_nullable(_dict))
    list = staticmethod(_list)
    any = staticmethod(_any)


Schema = Mapping[str, Kind]


def require_object(body: Any, what: str = "request body") -> Dict[str, Any]:
    if not isinstance(body, dict):
        raise BadInput(f"{what}: expected a JSON object, got {_type_name(body)}")
    return body


def read_json_args(body: Any, schema: Schema, required: tuple[str, ...] = ()) -> Dict[str, Any]:
    """The fields of ``schema`` present in a JSON object body, checked; unknown keys are ignored."""
    data = require_object(body)
    for name in required:
        if name not in data:
            raise BadInput(f"{name}: required field missing")
    return {name: kind(name, data[name]) for name, kind in schema.items() if name in data}


_LIST_KINDS = (K.str_list, K.str_list_, K.optional_str_list_)


def read_query_args(query: Any, schema: Schema, required: tuple[str, ...] = ()) -> Dict[str, Any]:
    """The fields of ``schema`` present in a query string (lists as repeated keys), converted and checked."""
    out: Dict[str, Any] = {}
    for name in required:
        if name not in query:
            raise BadInput(f"{name}: required query parameter missing")
    for name, kind in schema.items():
        if name not in query:
            continue
        if kind in _LIST_KINDS:
            out[name] = query.getlist(name)
            continue
        raw: Optional[str] = query.get(name)
        if kind is K.int:
            try:
                out[name] = int(raw)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise BadInput(f"{name}: expected an integer, got {raw!r}") from None
        elif kind is K.float_:
            try:
                out[name] = float(raw)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise BadInput(f"{name}: expected a number, got {raw!r}") from None
        else:
            out[name] = raw
    return out
