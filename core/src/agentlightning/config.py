"""``lightning_cli``: build components from command-line options generated from their constructors.

Each ``__init__`` parameter of each class becomes ``--<classname>.<param-with-dashes>`` (lowercased class name), typed
from its annotation: ``int``/``float``/``str``, ``bool`` (yes/true/t/y/1, no/false/f/n/0), ``Optional[...]`` of those
(``none``/``null``/``~``/``nil`` read as None), and ``List[...]`` of those (several values). Other annotations read
as strings. Parameters without a default are required unless Optional.
"""

from __future__ import annotations

import argparse
import logging
import sys
import types
import typing
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, TypeVar, Union, overload

__all__ = ["lightning_cli", "nullable_str", "nullable_int", "nullable_float"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_NONE_WORDS = frozenset({"none", "null", "~", "nil"})
_TRUE_WORDS = frozenset({"yes", "true", "t", "y", "1"})
_FALSE_WORDS = frozenset({"no", "false", "f", "n", "0"})


def _str_to_bool(value: Union[str, bool]) -> bool:
    if isinstance(value, bool):
        return value
    word = value.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"Boolean value expected (yes/no, true/false, 1/0), got {value!r}")


def nullable_str(value: str) -> Optional[str]:
    """``value``, or None for none/null/~/nil (any case)."""
    return None if value.lower() in _NONE_WORDS else value


def _nullable(convert: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        if value.lower() in _NONE_WORDS:
            return None
        try:
            return convert(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} or None expected, got {value!r}") from None

    parse.__name__ = f"nullable_{what}"
    return parse


nullable_int = _nullable(int, "int")
nullable_float = _nullable(float, "float")


def _split_optional(annotation: Any) -> Tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    union_types: Tuple[Any, ...] = (Union,)
    if hasattr(types, "UnionType"):
        union_types += (types.UnionType,)
    if origin in union_types:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(annotation)):
            return args[0], True
    return annotation, False


def _scalar(annotation: Any, optional: bool) -> Tuple[Callable[[str], Any], str]:
    if annotation is bool:
        return _str_to_bool, "bool"
    if annotation is int:
        return (nullable_int if optional else int), "int"
    if annotation is float:
        return (nullable_float if optional else float), "float"
    if annotation is str:
        return (nullable_str if optional else str), "str"
    return str, "str"


def _argument(annotation: Any) -> Tuple[Callable[[str], Any], bool, str]:
    """(converter, takes a list, inferred type text) for an annotation."""
    inner, optional = _split_optional(annotation)
    if typing.get_origin(inner) in (list, List):
        item = (typing.get_args(inner) or (str,))[0]
        item_inner, item_optional = _split_optional(item)
        convert, name = _scalar(item_inner, item_optional)
        text = f"List[{name}]"
        return convert, True, f"Optional[{text}]" if optional else text
    convert, name = _scalar(inner, optional)
    return convert, False, f"Optional[{name}]" if optional else name


def _add_class_arguments(parser: argparse.ArgumentParser, cls: Type[Any]) -> List[Tuple[str, str]]:
    import inspect

    prefix = cls.__name__.lower()
    try:
        hints = typing.get_type_hints(cls.__init__)
    except (NameError, TypeError, AttributeError) as exc:  # unresolvable forward references: raw annotations
        logger.warning("Could not resolve the type hints of %s.__init__ (%s); using raw annotations", cls, exc)
        hints = dict(getattr(cls.__init__, "__annotations__", {}))
    params: List[Tuple[str, str]] = []
    group = parser.add_argument_group(cls.__name__)
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self":
            continue
        annotation = hints.get(name, Any)
        convert, is_list, text = _argument(annotation)
        optional = _split_optional(annotation)[1]
        dest = f"{prefix}_{name}"
        kwargs: Dict[str, Any] = {
            "dest": dest,
            "type": convert,
            "help": f"For {cls.__name__}: '{name}'. Inferred type: {text}.",
        }
        if is_list:
            kwargs["nargs"] = "*"
        if param.default is not inspect.Parameter.empty:
            kwargs["default"] = param.default
        elif optional:
            kwargs["default"] = None
        else:
            kwargs["required"] = True
        group.add_argument(f"--{prefix}.{name.replace('_', '-')}", **kwargs)
        params.append((name, dest))
    return params


@overload
def lightning_cli() -> Tuple[()]: ...
@overload
def lightning_cli(cls: Type[T], /) -> T: ...
@overload
def lightning_cli(*classes: Type[Any]) -> Tuple[Any, ...]: ...
def lightning_cli(*classes: Type[Any]) -> Any:
    """Parse ``sys.argv[1:]`` into instances of ``classes``: one class gives its instance, several a tuple."""
    if not classes:
        return ()
    parser = argparse.ArgumentParser(
        description="CLI configurator for application components.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    plans = [(cls, _add_class_arguments(parser, cls)) for cls in classes]
    namespace = parser.parse_args(sys.argv[1:])
    instances: List[Any] = []
    for cls, params in plans:
        kwargs = {name: getattr(namespace, dest) for name, dest in params}
        try:
            instances.append(cls(**kwargs))
        except Exception:
            logger.error("Building %s with %s failed", cls.__name__, kwargs)
            raise
    return instances[0] if len(instances) == 1 else tuple(instances)
