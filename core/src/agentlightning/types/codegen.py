"""Hot-path code generated from the models' attrs field lists: the one place a span's field list is read.

Every field of a model gets one rule from :func:`field_rules`, chosen by its type (the declarative table is
:func:`_rule_for`); a field whose type has no rule raises :class:`UnsupportedField`, naming it, so that a new field
cannot be silently dropped. From those rules this module generates, once per class and at first use:

- :func:`positional_builder`: ``build(field1, field2, ...)``, the instance without keyword parsing, and
  :func:`inline_builder`, the same statements for a generated function's own body;
- :func:`dict_encoder` / :func:`dict_decoder`: the dicts the project's converter writes, and the instance back from
  such a dict (trusted data: no per-field type checks beyond the models' validators);
- :func:`checked_dict_decoder`: the instance from untrusted data parsed from JSON, for the exact types the converter
  accepts with the same result, declining (:class:`Declined`) everything else, which the converter then decides;

and the memory store's packing (``agentlightning_memory.packing``) is generated from the same rules. Generated
straight-line code (``exec`` of source built from attrs field names, which are identifiers) keeps these paths as fast
as the hand-written code they replaced (``tests/benchmarks/span_codec.py``; figures in ``docs/performance.md``).
"""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any, Callable, Dict, List, Optional, Tuple

import attrs

__all__ = [
    "UnsupportedField",
    "FieldRule",
    "field_rules",
    "positional_builder",
    "inline_builder",
    "dict_encoder",
    "dict_decoder",
    "compile_function",
    "model_classes",
    "Declined",
    "checked_dict_decoder",
    "VALUE",
    "INT",
    "NUMBER",
    "DICT",
    "OPTIONAL_DICT",
    "MODEL",
    "OPTIONAL_MODEL",
    "MODEL_LIST",
    "EXTRAS",
]

VALUE = "value"
"""A JSON scalar kept as it is (strings, booleans, literals, optional strings)."""
INT = "int"
"""An integer (``int()`` when read back from JSON)."""
NUMBER = "number"
"""A float or ``None`` (``float()`` when read back: JSON may hold ``3`` for ``3.0``)."""
DICT = "dict"
"""A dict of JSON values (attributes, trace state), shared, not copied, by the dict codec."""
OPTIONAL_DICT = "optional_dict"
MODEL = "model"
"""A nested attrs model."""
OPTIONAL_MODEL = "optional_model"
MODEL_LIST = "model_list"
"""A list of nested attrs models."""
EXTRAS = "extras"
"""The field (``metadata={"extras": True}``) that keeps the JSON keys the model does not know."""


class UnsupportedField(TypeError):
    """A model field whose type has no encode/decode rule: add one to :func:`_rule_for`."""


@attrs.frozen
class FieldRule:
    name: str
    kind: str
    model: Optional[type] = None
    """The nested model class, for the MODEL kinds."""
    attribute: Any = None
    """The attrs attribute (default, validator)."""


def _optional_of(tp: Any) -> Any:
    """``X`` for ``Optional[X]``, else None."""
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


def _is_scalar(tp: Any) -> bool:
    return tp in (str, bool) or typing.get_origin(tp) is typing.Literal


def _direct_rule(tp: Any) -> Tuple[Optional[str], Optional[type]]:
    if _is_scalar(tp):
        return VALUE, None
    if tp is int:
        return INT, None
    if tp is float:
        return NUMBER, None
    if typing.get_origin(tp) is dict:
        return DICT, None
    if attrs.has(tp):
        return MODEL, tp
    args = typing.get_args(tp)
    if typing.get_origin(tp) is list and len(args) == 1 and attrs.has(args[0]):
        return MODEL_LIST, args[0]
    return None, None


_OPTIONAL_RULES = {VALUE: VALUE, NUMBER: NUMBER, DICT: OPTIONAL_DICT, MODEL: OPTIONAL_MODEL}
"""The rule of ``Optional[X]`` by the rule of ``X`` (absent: no rule)."""


def _rule_for(owner: type, attribute: Any, tp: Any) -> Tuple[str, Optional[type]]:
    """The declarative table: a field's type to its rule."""
    if attribute.metadata.get("extras"):
        return EXTRAS, None
    kind, model = _direct_rule(tp)
    if kind is None and _optional_of(tp) is not None:
        inner, model = _direct_rule(_optional_of(tp))
        kind = _OPTIONAL_RULES.get(inner or "")
    if kind is None:
        raise UnsupportedField(f"{owner.__name__}.{attribute.name}: no encode/decode rule for the type {tp!r}")
    return kind, model


@cache
def field_rules(cls: type) -> Tuple[FieldRule, ...]:
    """One rule per attrs field of ``cls``, in field order; raises :class:`UnsupportedField`."""
    hints = typing.get_type_hints(cls)
    out = []
    for attribute in attrs.fields(cls):
        if not attribute.init:
            raise UnsupportedField(f"{cls.__name__}.{attribute.name}: a field outside __init__ has no rule")
        kind, model = _rule_for(cls, attribute, hints.get(attribute.name, attribute.type))
        out.append(FieldRule(attribute.name, kind, model, attribute))
    return tuple(out)


def compile_function(source: str, name: str, namespace: Dict[str, Any], label: str) -> Callable[..., Any]:
    """``exec`` ``source`` (generated from field names) and return the function it defines as ``name``."""
    exec(compile(source, f"<{label}>", "exec"), namespace)  # noqa: S102 - source is built from field names, not input
    return namespace[name]


_new = object.__new__


def _buildable_fields(cls: type, post_init: bool) -> Any:
    """``cls``'s attrs fields; raises :class:`UnsupportedField` when setting them is not all its ``__init__`` does
    (a converter, a field outside ``__init__`` or under another name, an init hook, except an
    ``__attrs_post_init__`` with ``post_init``)."""
    fields = attrs.fields(cls)
    hooks = ("__attrs_pre_init__",) if post_init else ("__attrs_pre_init__", "__attrs_post_init__")
    if any(a.converter is not None or not a.init or a.alias != a.name for a in fields) or any(
        hasattr(cls, hook) for hook in hooks
    ):
        raise UnsupportedField(f"{cls.__name__}: a positional builder cannot stand in for its __init__")
    return fields


@cache
def positional_builder(cls: type, validate: bool = False, post_init: bool = False) -> Callable[..., Any]:
    """``build(*fields)``: ``cls(**fields)`` with every field given positionally, stored into its slot.

    With ``validate`` the fields' validators run (as ``__init__`` runs them); without, they are skipped: only for
    values copied from an instance that was validated (a packed or stored one). ``cls`` must have no converters and
    no init hooks (checked here), except, with ``post_init``, an ``__attrs_post_init__``: run last, as ``__init__``
    runs it.
    """
    fields = _buildable_fields(cls, post_init)
    namespace: Dict[str, Any] = {}
    lines = [f"    {line}\n" for line in _slot_lines(cls, fields, "obj", [a.name for a in fields], namespace, "")]
    checks = []
    for i, a in enumerate(fields):
        if validate and a.validator is not None:
            namespace[f"_v{i}"], namespace[f"_a{i}"] = a.validator, a
            checks.append(f"    _v{i}(obj, _a{i}, {a.name})\n")
    if hasattr(cls, "__attrs_post_init__"):
        checks.append("    obj.__attrs_post_init__()\n")
    source = f"def build({', '.join(a.name for a in fields)}):\n{''.join(lines + checks)}    return obj\n"
    return compile_function(source, "build", namespace, f"builder for {cls.__qualname__}")


def inline_builder(cls: type, target: str, values: List[str], namespace: Dict[str, Any], tag: str) -> List[str]:
    """Statements (unindented) that bind ``target`` to a new ``cls`` whose fields, in field order, are the
    expressions ``values``, each stored straight into its slot: what :func:`positional_builder` does without
    validation, written into a generated function's own body (no call), for the classes it accepts. The names they
    use (``_new``, ``_set``, the class and slot setters, suffixed with ``tag``) are put into ``namespace``."""
    fields = _buildable_fields(cls, False)
    if len(values) != len(fields):
        raise ValueError(f"{cls.__name__} has {len(fields)} fields, got {len(values)} values")
    return _slot_lines(cls, fields, target, values, namespace, tag)


def _slot_lines(
    cls: type, fields: Any, target: str, values: List[str], namespace: Dict[str, Any], tag: str
) -> List[str]:
    namespace.update(_new=_new, _set=object.__setattr__)
    namespace[f"_cls{tag}"] = cls
    lines = [f"{target} = _new(_cls{tag})"]
    plain = cls.__setattr__ is object.__setattr__  # type: ignore[comparison-overlap]
    for i, (a, value) in enumerate(zip(fields, values, strict=True)):
        slot = next((k.__dict__[a.name] for k in cls.__mro__ if a.name in k.__dict__), None)
        if plain:  # the interpreter's own store into the slot (the fastest)
            lines.append(f"{target}.{a.name} = {value}")
        elif type(slot) is types.MemberDescriptorType:  # the slot's setter skips the __setattr__ hook (validators)
            namespace[f"_s{tag}_{i}"] = slot.__set__
            lines.append(f"_s{tag}_{i}({target}, {value})")
        else:
            lines.append(f"_set({target}, {a.name!r}, {value})")
    return lines


# -- dicts (the converter's JSON shape) ------------------------------------------------------------------------------


def _merge(out: Dict[str, Any], extras: Dict[str, Any]) -> Dict[str, Any]:
    for key, value in extras.items():  # unknown keys come last and never shadow a field (as the converter does)
        out.setdefault(key, value)
    return out


def _extra(d: Dict[str, Any], known: frozenset[str]) -> Dict[str, Any]:
    if len(d) == len(known):
        return {}
    return {k: v for k, v in d.items() if k not in known}


def _number(value: Any) -> Optional[float]:
    return None if value is None else float(value)


@cache
def dict_encoder(cls: type) -> Callable[[Any], Dict[str, Any]]:
    """``to_dict(obj)`` for an instance of ``cls`` whose dict-valued fields hold JSON-ready values (shared, not
    copied). Raises :class:`UnsupportedField` when a field (of ``cls`` or a nested model) has no rule."""
    namespace: Dict[str, Any] = {"_merge": _merge}
    items = []
    pre = []
    extras: Optional[str] = None
    for i, rule in enumerate(field_rules(cls)):
        get = f"o.{rule.name}"
        if rule.kind == EXTRAS:
            extras = rule.name
            continue
        if rule.kind in (MODEL, OPTIONAL_MODEL, MODEL_LIST):
            namespace[f"_e{i}"] = dict_encoder(rule.model)
        if rule.kind == MODEL:
            value = f"_e{i}({get})"
        elif rule.kind == OPTIONAL_MODEL:
            pre.append(f"    v{i} = {get}\n")
            value = f"None if v{i} is None else _e{i}(v{i})"
        elif rule.kind == MODEL_LIST:
            value = f"[_e{i}(x) for x in {get}]"
        else:
            value = get
        items.append(f"        {rule.name!r}: {value},\n")
    tail = f"    x = o.{extras}\n    return _merge(out, x) if x else out\n" if extras else "    return out\n"
    source = f"def encode(o):\n{''.join(pre)}    out = {{\n{''.join(items)}    }}\n{tail}"
    return compile_function(source, "encode", namespace, f"dict encoder for {cls.__qualname__}")


@cache
def dict_decoder(cls: type) -> Callable[[Dict[str, Any]], Any]:
    """``from_dict(d, cls)`` for a dict :func:`dict_encoder` (or the converter) wrote: trusted data, no type checks
    besides the models' validators. A missing key raises KeyError; a bad value TypeError or ValueError."""
    rules = field_rules(cls)
    namespace: Dict[str, Any] = {"_build": positional_builder(cls, True), "_number": _number, "_extra": _extra}
    pre = []
    args = []
    for i, rule in enumerate(rules):
        get = f"d[{rule.name!r}]"
        if rule.kind in (MODEL, OPTIONAL_MODEL, MODEL_LIST):
            namespace[f"_d{i}"] = dict_decoder(rule.model)
        if rule.kind == EXTRAS:
            namespace["_known"] = frozenset(r.name for r in rules if r.kind != EXTRAS)
            args.append("_extra(d, _known)")
        elif rule.kind == INT:
            args.append(f"int({get})")
        elif rule.kind == NUMBER:
            args.append(f"_number({get})")
        elif rule.kind == MODEL:
            args.append(f"_d{i}({get})")
        elif rule.kind == OPTIONAL_MODEL:
            pre.append(f"    v{i} = {get}\n")
            args.append(f"None if v{i} is None else _d{i}(v{i})")
        elif rule.kind == MODEL_LIST:
            args.append(f"[_d{i}(x) for x in {get}]")
        else:
            args.append(get)
    joined = ",\n        ".join(args)
    source = f"def decode(d):\n{''.join(pre)}    return _build(\n        {joined},\n    )\n"
    return compile_function(source, "decode", namespace, f"dict decoder for {cls.__qualname__}")


def model_classes(cls: type) -> List[type]:
    """``cls`` and every model nested in it (depth first, each once)."""
    seen: List[type] = []

    def visit(c: type) -> None:
        if c in seen:
            return
        seen.append(c)
        for rule in field_rules(c):
            if rule.model is not None:
                visit(rule.model)

    visit(cls)
    return seen


# -- checked decoding (untrusted JSON) -------------------------------------------------------------------------------


class Declined(Exception):
    """Data a :func:`checked_dict_decoder` does not take: not necessarily invalid, the converter decides."""


def _type_test(tp: Any, var: str, namespace: Dict[str, Any], label: str) -> Optional[str]:
    """A Python test that ``var`` is a JSON value the converter structures to ``tp`` as the value itself (None: no
    such test, values of ``tp`` are always declined)."""
    inner = _optional_of(tp)
    if inner is not None:
        test = _type_test(inner, var, namespace, label)
        return None if test is None else f"({var} is None or {test})"
    if tp in (str, bool, int, float) or tp is typing.Any:
        if tp is typing.Any:
            return "True"
        return f"type({var}) is {tp.__name__}"
    if typing.get_origin(tp) is typing.Literal:
        values = typing.get_args(tp)
        if not all(type(v) is str for v in values):
            return None
        namespace[label] = frozenset(values)
        return f"(type({var}) is str and {var} in {label})"
    return None


@cache
def checked_dict_decoder(cls: type) -> Optional[Callable[[Any], Any]]:
    """``from_dict(d, cls)`` for data parsed from JSON (object keys are strings), checked: each field must be present
    and of exactly the JSON type the project's converter turns into the same value (a string for ``str``, an int for
    ``int``, an int or a float for ``float``, objects for models and dicts, lists for model lists); dicts are copied
    as the converter copies them. Anything else (a missing field left to its default, ``3.0`` for an int, a failing
    validator) raises :class:`Declined`, KeyError or the validator's error, and the caller falls back to the
    converter, whose answer or error is then the one given: the two always agree. None for a model with a field (its
    own or a nested model's) of a type without a test: the converter decodes it."""
    hints = typing.get_type_hints(cls)
    try:
        rules = field_rules(cls)
    except UnsupportedField:
        return None
    namespace: Dict[str, Any] = {
        "_build": positional_builder(cls, True), "_extra": _extra, "_D": Declined, "_dict": dict,
    }  # fmt: skip
    lines = ["    if type(d) is not dict:\n        raise _D\n"]
    args = []
    for i, rule in enumerate(rules):
        v = f"v{i}"
        tp = hints.get(rule.name, rule.attribute.type)
        if rule.kind == EXTRAS:
            namespace["_known"] = frozenset(r.name for r in rules if r.kind != EXTRAS)
            args.append("_extra(d, _known)")
            continue
        lines.append(f"    {v} = d[{rule.name!r}]\n")
        if rule.kind in (MODEL, OPTIONAL_MODEL, MODEL_LIST):
            namespace[f"_d{i}"] = checked_dict_decoder(rule.model)
            if namespace[f"_d{i}"] is None:
                return None
        if rule.kind in (VALUE, INT):
            test = _type_test(tp, v, namespace, f"_l{i}")
            if test is None:
                return None
            lines.append(f"    if not {test}:\n        raise _D\n")
            args.append(v)
        elif rule.kind == NUMBER:
            optional = _optional_of(tp) is not None
            check = f"    if {v} is not None:\n" if optional else ""
            pad = "    " if optional else ""
            check += f"{pad}    if type({v}) is int:\n{pad}        {v} = float({v})\n"
            check += f"{pad}    elif type({v}) is not float:\n{pad}        raise _D\n"
            if not optional:
                check = f"    if {v} is None:\n        raise _D\n" + check
            lines.append(check)
            args.append(v)
        elif rule.kind in (DICT, OPTIONAL_DICT):
            mapping = _optional_of(tp) if rule.kind == OPTIONAL_DICT else tp
            key_type, value_type = typing.get_args(mapping) or (None, None)
            value_test = _type_test(value_type, "x", namespace, f"_l{i}")
            if key_type is not str or value_test is None:
                return None
            check = f"type({v}) is not dict"
            if value_test != "True":
                check += f" or not all({value_test} for x in {v}.values())"
            if rule.kind == OPTIONAL_DICT:
                lines.append(f"    if {v} is not None:\n        if {check}:\n            raise _D\n")
                lines.append(f"        {v} = _dict({v})\n")
            else:
                lines.append(f"    if {check}:\n        raise _D\n    {v} = _dict({v})\n")
            args.append(v)
        elif rule.kind == MODEL:
            args.append(f"_d{i}({v})")
        elif rule.kind == OPTIONAL_MODEL:
            args.append(f"None if {v} is None else _d{i}({v})")
        else:  # MODEL_LIST
            lines.append(f"    if type({v}) is not list:\n        raise _D\n")
            args.append(f"[_d{i}(x) for x in {v}]")
    joined = ",\n        ".join(args)
    source = f"def decode(d):\n{''.join(lines)}    return _build(\n        {joined},\n    )\n"
    return compile_function(source, "decode", namespace, f"checked dict decoder for {cls.__qualname__}")
