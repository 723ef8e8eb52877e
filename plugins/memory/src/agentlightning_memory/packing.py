"""Spans as the in-memory store keeps them: flat tuples of plain values, rebuilt into fresh :class:`Span` objects.

A stored :class:`Span` is six or more objects the garbage collector tracks (the span, its status, context and resource,
two lists), and every full collection walks all of them: with tens of thousands of spans kept, collections dominated
the cost of a store call. A packed span is one tuple of strings, numbers and ``None`` holding at most one more level
of such tuples (the attribute keys, the attribute values, the rarer parts); CPython stops tracking tuples of plain
values at the young collections that first see them, so kept spans cost the collector nothing. The usual context
(the span's own ids, local, nothing else) is packed as a flag. A query rebuilds a fresh, equal span, so callers that
mutate what they got cannot change what is stored.

The attribute values, and those of the span's resource, sit in the packed tuple itself, after a tuple of their keys
that spans with the same attribute names share (a bounded cache): a kept span is then a single tuple the collector
ever counts, besides the few nested ones a rarer part (events, links, a status with extras, ...) brings. Fewer
tracked allocations per kept span mean fewer young collections while spans stream in.

Values nested inside attributes (a list, a dict) are kept by reference, as before; a span whose parts are not of the
exact model types (a subclass, a tuple where a list is expected, ...) is kept as the object itself, unchanged.

``pack_span`` and ``unpack_span`` are generated at import from the span models' field lists and their rules
(:mod:`agentlightning.types.codegen`), with the three packing-specific rules below (:data:`_HEAD`, :data:`_SPREAD`,
:data:`_OWN_CONTEXTS`): a field added to a model is packed without a change here, or, when it has no rule, every span
is kept as the object itself (and a test fails).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable, Dict, List, Optional, Tuple

from agentlightning.types.codegen import (
    DICT,
    EXTRAS,
    MODEL,
    MODEL_LIST,
    OPTIONAL_DICT,
    OPTIONAL_MODEL,
    UnsupportedField,
    compile_function,
    field_rules,
    inline_builder,
    positional_builder,
)
from agentlightning.types.tracer import Span

__all__ = ["PackedSpan", "pack_span", "unpack_span", "packed_sequence_id", "PACKED"]

PackedSpan = Tuple[Any, ...]
"""``(attempt_id, sequence_id, fields..., resource_attribute_keys, attribute_keys, *resource_attribute_values,
*attribute_values)``; ``(attempt_id, sequence_id, span)`` for a span kept as it is."""

_RAW_LENGTH = 3

_HEAD = ("attempt_id", "sequence_id")
"""Span fields packed first, at fixed positions (:data:`packed_sequence_id` reads the second)."""

_SPREAD = ("resource.attributes", "attributes")
"""The dicts packed last (paths from the span; the span's own field last): a shared tuple of each one's keys, then
all their values in the packed tuple itself. A span then adds one tuple for the collector to count, not three more
for its resource's attributes (the same few keys and values in every span of a tracer), which made young collections
three times as frequent."""

_OWN_CONTEXTS = {"context": {"span_id": "span_id"}, "parent": {"span_id": "parent_id"}}
"""Span fields holding a :class:`SpanContext` that is usually the span's own: ``{context field: span field}`` for the
ids that must match (``trace_id`` matches the span's ``trace_id`` in both); such a context, with every other field at
its default, is packed as ``True``."""

_KEY_CACHE_SIZE = 4096
"""At most this many distinct attribute-name tuples are shared; beyond it each span keeps its own."""

_keys: Dict[Tuple[str, ...], Tuple[str, ...]] = {}


def _shared_keys(attributes: Dict[str, Any]) -> Tuple[str, ...]:
    """The attribute names as a tuple, the same object for every span with these names (while the cache has room).

    Only tuples of plain strings are kept for sharing: keys of other types compare equal across types (``1 ==
    True``), and a shared tuple of them could give one span another's keys. (A key of a ``str`` subclass equal to a
    shared name comes back as the plain string, as from a store that writes JSON.)"""
    keys = tuple(attributes)
    shared = _keys.get(keys)
    if shared is not None:
        return shared
    # dict writes are atomic: threads at worst store equal tuples twice
    if len(_keys) < _KEY_CACHE_SIZE and all(type(key) is str for key in keys):
        _keys[keys] = keys
    return keys


class _Unpackable(Exception):
    """A part of the span is not of the exact type the packed form rebuilds."""


# -- code generation -------------------------------------------------------------------------------------------------


class _Generator:
    """Source of ``pack``/``unpack`` functions, one pair per model class, from the models' field rules."""

    def __init__(self) -> None:
        self.ns: Dict[str, Any] = {"_Unpackable": _Unpackable, "_shared_keys": _shared_keys, "_known_keys": _keys.get}
        self.models: Dict[type, str] = {}

    def name(self, cls: type) -> str:
        """``_pk_<n>``/``_up_<n>``/``_cls_<n>``/``_b_<n>`` in the namespace, generating them on first use."""
        tag = self.models.get(cls)
        if tag is None:
            tag = self.models[cls] = str(len(self.models))
            self.ns[f"_cls_{tag}"] = cls
            self.ns[f"_b_{tag}"] = positional_builder(cls)  # no validation: the packed values were validated
            self.ns[f"_pk_{tag}"] = self.part_packer(cls, tag)
            self.ns[f"_up_{tag}"] = self.part_unpacker(cls, tag)
        return tag

    def pack_parts(
        self, cls: type, path: str, skip: Tuple[str, ...] = (), spread: Tuple[str, ...] = ()
    ) -> Tuple[List[str], List[str]]:
        """``(conditions, expressions)``: the type checks of ``cls``'s fields at ``path`` and one expression per
        packed slot (nested required models are flattened into their fields; a dict at a path in ``spread`` gets a
        check only: the caller packs it)."""
        conds: List[str] = []
        exprs: List[str] = []
        for rule in field_rules(cls):
            if rule.name in skip:
                continue
            p = f"{path}.{rule.name}"
            if rule.kind == DICT and p in spread:
                conds.append(f"type({p}) is dict")
            elif rule.kind in (DICT, EXTRAS):
                conds.append(f"type({p}) is dict")
                exprs.append(f"tuple({p}.items()) if {p} else ()")
            elif rule.kind == OPTIONAL_DICT:
                conds.append(f"({p} is None or type({p}) is dict)")
                exprs.append(f"None if {p} is None else tuple({p}.items())")
            elif rule.kind == MODEL:
                tag = self.name(rule.model)  # type: ignore[arg-type]
                sub_conds, sub_exprs = self.pack_parts(rule.model, p, spread=spread)  # type: ignore[arg-type]
                conds.extend([f"type({p}) is _cls_{tag}", *sub_conds])
                exprs.extend(sub_exprs)
            elif rule.kind == OPTIONAL_MODEL:
                exprs.append(f"_pk_{self.name(rule.model)}({p})")  # type: ignore[arg-type]
            elif rule.kind == MODEL_LIST:
                conds.append(f"type({p}) is list")
                exprs.append(f"(*map(_pk_{self.name(rule.model)}, {p}),) if {p} else ()")  # type: ignore[arg-type]
            else:
                exprs.append(p)
        return conds, exprs

    def unpack_parts(
        self,
        cls: type,
        slots: List[str],
        skip: Tuple[str, ...] = (),
        path: str = "o",
        spread: Optional[Dict[str, str]] = None,
        body: Optional[List[str]] = None,
    ) -> List[str]:
        """One argument of ``cls``'s builder per field (``skip``: none), reading the slot names from ``slots``; a
        dict at a path in ``spread`` (the paths :meth:`pack_parts` was given) is read from the local it names. With
        ``body``, a nested required model is built by statements appended to it (no builder call) into a local, the
        argument."""
        args: List[str] = []
        for rule in field_rules(cls):
            if rule.name in skip:
                continue
            p = f"{path}.{rule.name}"
            if rule.kind == MODEL:
                tag = self.name(rule.model)  # type: ignore[arg-type]
                inner = self.unpack_parts(rule.model, slots, path=p, spread=spread, body=body)  # type: ignore[arg-type]
                if body is None:
                    args.append(f"_b_{tag}({', '.join(inner)})")
                else:
                    local = f"m_{len(body)}"
                    body.extend(inline_builder(rule.model, local, inner, self.ns, f"i{tag}"))  # type: ignore[arg-type]
                    args.append(local)
                continue
            if rule.kind == DICT and spread and p in spread:
                args.append(spread[p])
                continue
            q = slots.pop(0)
            if rule.kind in (DICT, EXTRAS):
                args.append(f"dict({q}) if {q} else {{}}")
            elif rule.kind == OPTIONAL_DICT:
                args.append(f"None if {q} is None else dict({q})")
            elif rule.kind == OPTIONAL_MODEL:
                args.append(f"_up_{self.name(rule.model)}({q})")  # type: ignore[arg-type]
            elif rule.kind == MODEL_LIST:
                args.append(f"[*map(_up_{self.name(rule.model)}, {q})] if {q} else []")  # type: ignore[arg-type]
            else:
                args.append(q)
        return args

    def part_packer(self, cls: type, tag: str) -> Callable[[Any], Any]:
        """``pack(part)``: a nested model (or None) as a tuple; raises :class:`_Unpackable` on another type."""
        self.ns[f"_cls_{tag}"] = cls
        conds, exprs = self.pack_parts(cls, "o")
        check = " and ".join([f"type(o) is _cls_{tag}", *conds])
        source = (
            "def pack(o):\n    if o is None:\n        return None\n"
            f"    if not ({check}):\n        raise _Unpackable\n    return ({', '.join(exprs)},)\n"
        )
        return compile_function(source, "pack", self.ns, f"packer for {cls.__qualname__}")

    def part_unpacker(self, cls: type, tag: str) -> Callable[[Any], Any]:
        slots = [f"q{i}" for i in range(len(self.pack_parts(cls, "o")[1]))]
        args = self.unpack_parts(cls, list(slots))
        source = (
            f"def unpack(t):\n    if t is None:\n        return None\n    ({', '.join(slots)},) = t\n"
            f"    return _b_{tag}({', '.join(args)})\n"
        )
        return compile_function(source, "unpack", self.ns, f"unpacker for {cls.__qualname__}")

    def own_context(self, cls: type, ids: Dict[str, str]) -> Optional[Tuple[str, List[str]]]:
        """For a usual context: the condition that ``v`` (the context) is one, and the builder's arguments
        (``s_<span field>`` for the ids, the defaults for the rest); None if a field has a default this cannot
        write."""
        conds = [f"type(v) is _cls_{self.name(cls)}"]
        args = []
        for rule in field_rules(cls):
            a = rule.attribute
            if rule.name in ids:
                conds.append(f"v.{rule.name} == o.{ids[rule.name]}")
                args.append(f"s_{ids[rule.name]}")
            elif getattr(a.default, "factory", None) is dict and not getattr(a.default, "takes_self", True):
                conds.append(f"type(v.{rule.name}) is dict and not v.{rule.name}")
                args.append("{}")
            elif a.default is None or type(a.default) is bool:
                conds.append(f"v.{rule.name} is {a.default!r}")
                args.append(repr(a.default))
            elif type(a.default) in (str, int, float):
                conds.append(f"v.{rule.name} == {a.default!r}")
                args.append(repr(a.default))
            else:
                return None
        return " and ".join(conds), args

    def span_functions(self, span_cls: type = Span) -> Tuple[Callable[[Any], PackedSpan], Callable[[PackedSpan], Any]]:
        """``pack`` and ``unpack`` for ``span_cls`` (:class:`Span`; another class in tests)."""
        rules = {rule.name: rule for rule in field_rules(span_cls)}
        if rules[_SPREAD[-1]].kind != DICT or any(rules[name].kind in (MODEL, MODEL_LIST) for name in _HEAD):
            raise UnsupportedField(f"Span.{_SPREAD[-1]} is no longer a dict")
        top = _SPREAD[-1]
        paths = tuple(f"o.{name}" for name in _SPREAD)
        spread = {path: f"d_{i}" for i, path in enumerate(paths)}  # unpack: the local each spread dict is built in
        self.ns.update(_cls_span=span_cls, _b_span=positional_builder(span_cls))
        pre: List[str] = []  # pack: locals bound before the checks
        conds = ["type(o) is _cls_span", f"type(o.{top}) is dict"]
        exprs = [f"o.{name}" for name in _HEAD]
        slots = [f"s_{name}" for name in _HEAD]  # unpack: the packed tuple's names
        args: Dict[str, str] = {name: f"s_{name}" for name in _HEAD}  # unpack: the builder's arguments
        body: List[str] = []  # unpack: statements building the nested parts (no builder calls)
        for rule in field_rules(span_cls):
            if rule.name in _HEAD or rule.name == top:
                continue
            own = None
            if rule.name in _OWN_CONTEXTS and rule.kind == OPTIONAL_MODEL:
                own = self.own_context(rule.model, {"trace_id": "trace_id", **_OWN_CONTEXTS[rule.name]})  # type: ignore[arg-type]
            if own is not None:
                check, defaults = own
                tag = self.name(rule.model)  # type: ignore[arg-type]
                pre.append(f"    c_{rule.name} = o.{rule.name}\n")
                cond = check.replace("v.", f"c_{rule.name}.").replace("type(v)", f"type(c_{rule.name})")
                exprs.append(f"None if c_{rule.name} is None else True if {cond} else _pk_{tag}(c_{rule.name})")
                q = f"s_{rule.name}"
                slots.append(q)
                own_built = inline_builder(rule.model, f"c_{rule.name}", defaults, self.ns, f"i{tag}")  # type: ignore[arg-type]
                body.append(f"if {q} is True:")
                body.extend(f"    {line}" for line in own_built)
                body.extend(["else:", f"    c_{rule.name} = _up_{tag}({q})"])
                args[rule.name] = f"c_{rule.name}"
                continue
            others = tuple(n for n in rules if n != rule.name)
            sub_conds, sub_exprs = self.pack_parts(span_cls, "o", skip=others, spread=paths)
            conds.extend(sub_conds)
            exprs.extend(sub_exprs)
            own_slots = [
                f"s_{rule.name}" if len(sub_exprs) == 1 else f"s_{rule.name}_{i}" for i in range(len(sub_exprs))
            ]
            slots.extend(own_slots)
            [args[rule.name]] = self.unpack_parts(span_cls, own_slots, skip=others, spread=spread, body=body)
        if any(f"type({path}) is dict" not in conds for path in paths[:-1]):
            raise UnsupportedField(f"Span.{', '.join(_SPREAD[:-1])} is no longer a dict")
        # the spread dicts: their shared key tuples, then all their values in the same order
        # the cache looked up inline (no call) for names seen before; _shared_keys for the rest (and for no names)
        exprs.extend(f"(_known_keys(tuple({path})) or _shared_keys({path}))" for path in paths)
        exprs.extend(f"*{path}.values()" for path in paths)
        args[top] = spread[f"o.{top}"]
        built = "".join(f"    {spread[path]} = dict(zip(k_{i}, v))\n" for i, path in enumerate(paths))
        body.extend(inline_builder(span_cls, "o", [args[rule.name] for rule in field_rules(span_cls)], self.ns, "span"))
        pack_source = (
            "def pack(o):\n"
            f"    if {' and '.join(conds)}:\n"
            f"{''.join('    ' + line for line in pre)}"
            "        try:\n"
            f"            return ({', '.join(exprs)})\n"
            "        except _Unpackable:  # an event, link or context of another type\n"
            "            pass\n"
            f"    return ({', '.join(f'o.{name}' for name in _HEAD)}, o)\n"
        )
        unpack_source = (
            "def unpack(p):\n"
            f"    if len(p) == {_RAW_LENGTH}:\n"
            "        return p[2]\n"
            f"    ({', '.join(slots)}, {', '.join(f'k_{i}' for i in range(len(paths)))}, *values) = p\n"
            "    v = iter(values)  # each dict takes as many values as it has keys (zip stops at its keys' end)\n"
            f"{built}"
            f"{''.join(f'    {line}{chr(10)}' for line in body)}"
            "    return o\n"
        )
        return (
            compile_function(pack_source, "pack", self.ns, "pack_span"),
            compile_function(unpack_source, "unpack", self.ns, "unpack_span"),
        )


def _raw_pack(span: Span) -> PackedSpan:
    return (span.attempt_id, span.sequence_id, span)


def _raw_unpack(packed: PackedSpan) -> Span:
    return packed[2]  # type: ignore[no-any-return]


def _generate() -> Tuple[Callable[[Span], PackedSpan], Callable[[PackedSpan], Span], bool]:
    try:
        return (*_Generator().span_functions(), True)
    except UnsupportedField:  # a field without a rule: spans are kept as they are (slower, still correct)
        return _raw_pack, _raw_unpack, False


pack_span, unpack_span, PACKED = _generate()  # PACKED: False when a span field has no rule (spans kept as objects)
pack_span.__doc__ = """The packed form of ``span`` (the span itself, in a short tuple, when a part has an unexpected
type)."""
unpack_span.__doc__ = """A fresh span equal to the one packed (the very object, for a span kept as it is)."""

packed_sequence_id: Callable[[PackedSpan], Any] = itemgetter(1)
"""The ``sequence_id`` of a packed span (a sort key; an ``itemgetter``: no Python call per item)."""
