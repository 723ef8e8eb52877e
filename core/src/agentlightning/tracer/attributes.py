"""Span attribute helpers shared by tracers, emitters and adapters: flatten, unflatten, sanitize, tags and links."""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Union

from agentlightning.semconv import ExceptionAttributes, LightningSpanAttributes, LinkAttributes, LinkSpec

__all__ = [
    "flatten_attributes",
    "unflatten_attributes",
    "filter_attributes",
    "filter_and_unflatten_attributes",
    "sanitize_attribute_value",
    "sanitize_attributes",
    "sanitize_list_attribute_sanity",
    "check_attributes_sanity",
    "make_tag_attributes",
    "extract_tags_from_attributes",
    "make_link_attributes",
    "extract_links_from_attributes",
    "query_linked_spans",
    "format_exception_attributes",
]

logger = logging.getLogger(__name__)

_PRIMITIVES = (str, bool, int, float)


def _is_primitive(value: Any) -> bool:
    return isinstance(value, _PRIMITIVES)


def _kind(value: Any) -> type:
    return (
        bool
        if isinstance(value, bool)
        else int
        if isinstance(value, int)
        else float
        if isinstance(value, float)
        else str
    )


def _homogeneous(values: Sequence[Any]) -> bool:
    """Primitives of one kind (``[1, 2]``, ``["a"]``); ``[1, 2.0]`` mixes int and float, as upstream v0.3 counts."""
    if not all(_is_primitive(v) for v in values):
        return False
    return len({_kind(v) for v in values}) <= 1


def flatten_attributes(data: Any, *, expand_leaf_lists: bool = False) -> Dict[str, Any]:
    """Nested dicts and lists to dotted keys: ``{"a": {"b": 1, "c": [2, 3]}}`` -> ``{"a.b": 1, "a.c": [2, 3]}``.

    Lists of primitives of one kind stay leaf values unless ``expand_leaf_lists``; other lists are indexed
    (``a.c.0``), as is a list at the root. Empty lists and dicts leave no key. A primitive at the root gets the key
    ``""``.
    """
    out: Dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValueError(
                        f"Only string keys are supported in dictionaries, got {key!r} of type {type(key).__name__} "
                        f"under {prefix or '<root>'!r}"
                    )
                walk(f"{prefix}.{key}" if prefix else key, item)
        elif isinstance(value, (list, tuple)):
            if not expand_leaf_lists and prefix and value and _homogeneous(value):
                out[prefix] = list(value)
                return
            if not expand_leaf_lists and prefix and value and all(_is_primitive(v) for v in value):
                logger.warning(
                    "List attribute %r contains mixed primitive types %s; expanding indexed keys instead",
                    prefix,
                    sorted(t.__name__ for t in {_kind(v) for v in value}),
                )
            for i, item in enumerate(value):
                walk(f"{prefix}.{i}" if prefix else str(i), item)
        else:
            out[prefix] = value

    walk("", data)
    return out


def _set_path(root: Dict[str, Any], parts: List[str], value: Any) -> None:
    node = root
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child  # nested wins over a primitive at the same path
        node = child
    leaf = parts[-1]
    if isinstance(node.get(leaf), dict):
        return  # a primitive never replaces nested values
    node[leaf] = value


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        indices = sorted(int(k) for k in converted)
        if indices == list(range(len(indices))):
            return [converted[str(i)] for i in indices]
    return converted


def unflatten_attributes(flat: Mapping[str, Any]) -> Any:
    """The inverse of :func:`flatten_attributes`; dicts keyed exactly ``0..n-1`` become lists."""
    root: Dict[str, Any] = {}
    for key in sorted(flat, key=lambda k: k.count(".")):
        _set_path(root, key.split("."), flat[key])
    return _listify(root)


def filter_attributes(attributes: Mapping[str, Any], prefix: str) -> Dict[str, Any]:
    """The attributes named ``prefix`` or ``prefix.*``."""
    dotted = prefix + "."
    return {k: v for k, v in attributes.items() if k == prefix or k.startswith(dotted)}


def filter_and_unflatten_attributes(attributes: Mapping[str, Any], prefix: str) -> Any:
    """The ``prefix.*`` attributes with the prefix stripped, unflattened."""
    if prefix in attributes:
        raise ValueError(f"attribute {prefix!r} is a leaf value; expected keys below it ({prefix}.*)")
    dotted = prefix + "."
    return unflatten_attributes({k[len(dotted) :]: v for k, v in attributes.items() if k.startswith(dotted)})


def sanitize_attribute_value(value: Any, *, force: bool = True, key: str = "") -> Any:
    """An OpenTelemetry-compatible value: primitives and homogeneous lists kept, the rest JSON-encoded."""
    if value is None and not force:
        raise ValueError(f"attribute {key!r} is None, which OpenTelemetry cannot store")
    if _is_primitive(value):
        return value
    if isinstance(value, (list, tuple)):
        try:
            return sanitize_list_attribute_sanity(list(value))
        except ValueError as exc:
            logger.warning("Failed to sanitize list attribute %r; falling back to JSON: %s", key, exc)
    try:
        return json.dumps(value, default=str if force else None)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Object must be JSON serializable, got: {type(value).__name__} (attribute {key!r}: {value!r})"
        ) from exc


def sanitize_list_attribute_sanity(values: List[Any]) -> List[Any]:
    """A list of primitives as one attribute value: strings or bools as they are, ints (with bools) as ints, numbers
    as floats. ``ValueError`` for a list mixing strings with numbers or holding anything else."""
    if all(isinstance(v, str) for v in values) or all(isinstance(v, bool) for v in values):
        return list(values)
    if all(isinstance(v, (bool, int)) for v in values):
        return [int(v) for v in values]
    if all(isinstance(v, (bool, int, float)) for v in values):
        return [float(v) for v in values]
    kinds = sorted({type(v).__name__ for v in values})
    raise ValueError(f"List must contain only one type of primitive values, got: {kinds}")


def sanitize_attributes(attributes: Mapping[str, Any], *, force: bool = True) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in attributes.items():
        try:
            out[key] = sanitize_attribute_value(value, force=force, key=key)
        except ValueError as exc:
            raise ValueError(f"Failed to sanitize attribute {key!r}: {exc}") from exc
    return out


def check_attributes_sanity(attributes: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first key that is not a string or whose value is not an attribute value."""
    for key, value in attributes.items():
        if not isinstance(key, str):
            raise ValueError(f"Attribute key must be a string, got {type(key).__name__} for key {key!r}")
        if _is_primitive(value):
            continue
        if isinstance(value, (list, tuple)):
            try:
                sanitize_list_attribute_sanity(list(value))
            except ValueError as exc:
                raise ValueError(f"Failed to sanitize list attribute {key!r}: {exc}") from exc
            continue
        raise ValueError(
            f"Attribute value must be a string, int, float, bool, or list of these, got {type(value).__name__} "
            f"for attribute {key!r}"
        )


def make_tag_attributes(tags: Iterable[str]) -> Dict[str, str]:
    return {f"{LightningSpanAttributes.TAG}.{i}": str(tag) for i, tag in enumerate(tags)}


def extract_tags_from_attributes(attributes: Mapping[str, Any]) -> List[str]:
    tags = filter_and_unflatten_attributes(attributes, LightningSpanAttributes.TAG)
    return [str(t) for t in tags] if isinstance(tags, list) else []


def make_link_attributes(links: Mapping[str, str]) -> Dict[str, str]:
    """``{"span_id": "ab12"}`` -> ``agentlightning.link.0.key_match`` / ``.value_match`` attributes."""
    out: Dict[str, str] = {}
    for i, (key, value) in enumerate(links.items()):
        if not isinstance(value, str):
            raise ValueError(f"Link value must be a string, got {type(value).__name__} for link key {key!r}")
        out[f"{LightningSpanAttributes.LINK}.{i}.{LinkAttributes.KEY_MATCH}"] = key
        out[f"{LightningSpanAttributes.LINK}.{i}.{LinkAttributes.VALUE_MATCH}"] = value
    return out


def extract_links_from_attributes(attributes: Mapping[str, Any]) -> List[LinkSpec]:
    raw = filter_and_unflatten_attributes(attributes, LightningSpanAttributes.LINK)
    items = raw if isinstance(raw, list) else list(raw.values()) if isinstance(raw, dict) else []
    links = []
    for item in items:
        if isinstance(item, dict) and LinkAttributes.KEY_MATCH in item and LinkAttributes.VALUE_MATCH in item:
            links.append(LinkSpec(str(item[LinkAttributes.KEY_MATCH]), str(item[LinkAttributes.VALUE_MATCH])))
    return links


def query_linked_spans(spans: Iterable[Any], links: Sequence[LinkSpec]) -> List[Any]:
    """The spans matching every link (``trace_id``/``span_id`` compare with the span's ids, others with attributes)."""

    def matches(span: Any, link: LinkSpec) -> bool:
        if link.key_match in ("trace_id", "span_id"):
            return str(getattr(span, link.key_match, None)) == link.value_match
        value = (getattr(span, "attributes", None) or {}).get(link.key_match)
        return value is not None and str(value) == link.value_match

    return [span for span in spans if all(matches(span, link) for link in links)]


def format_exception_attributes(exception: BaseException) -> Dict[str, Union[str, bool]]:
    """OpenTelemetry's ``exception.*`` attributes for ``exception``."""
    out: Dict[str, Union[str, bool]] = {
        ExceptionAttributes.TYPE: type(exception).__name__,
        ExceptionAttributes.MESSAGE: str(exception),
        ExceptionAttributes.ESCAPED: True,
    }
    stack = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__))
    if stack.strip():
        out[ExceptionAttributes.STACKTRACE] = stack
    return out
