"""Logging set-up for the ``agentlightning`` loggers (upstream v0.3's ``agl.setup_logging``).

Every module of this package and of its plugins logs under ``agentlightning...`` (plugins under
``agentlightning_<name>``, which :func:`setup` configures too unless ``apply_to`` says otherwise), so configuring the
``agentlightning`` logger configures them all. Nothing here runs at import time.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any, Dict, Iterable, Mapping, Optional, Union

__all__ = ["setup", "setup_module", "configure_logger", "DEFAULT_FORMAT", "DATE_FORMAT"]

DEFAULT_FORMAT = "%(asctime)s [%(levelname)s] (Process-%(process)d %(name)s)   %(message)s"
DATE_FORMAT = "%H:%M:%S"

Level = Union[int, str]


def _to_level_value(level: Level) -> int:
    """A level as its number: ``"info"`` -> 20; ``ValueError`` for an unknown name."""
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown logging level {level!r} (expected DEBUG, INFO, WARNING, ERROR or CRITICAL)")
    return value


def _console_handler(color: Union[bool, Mapping[str, Any]], level: int) -> logging.Handler:
    handler: logging.Handler
    if color:
        try:
            from rich.console import Console
            from rich.logging import RichHandler
        except ImportError:  # rich is optional here: plain lines instead of colours
            color = False
        else:
            options: Dict[str, Any] = (
                dict(color)
                if isinstance(color, Mapping)
                else {"rich_tracebacks": False, "markup": False, "show_time": True, "show_path": True}
            )
            if "console" not in options and not sys.stdout.isatty():
                options["console"] = Console(width=200)
            handler = RichHandler(**options)
            handler.setLevel(level)
            return handler
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(DEFAULT_FORMAT, DATE_FORMAT))
    handler.setLevel(level)
    return handler


def setup_module(
    level: Level = "INFO",
    *,
    name: str = "agentlightning",
    console: bool = True,
    color: Union[bool, Mapping[str, Any]] = True,
    propagate: bool = False,
    disable_existing_loggers: bool = False,
) -> logging.Logger:
    """Configure one logger: its level, one console handler (rich when ``color`` and rich is installed, else plain
    ``DEFAULT_FORMAT`` lines on stderr), and whether it propagates. Replaces the handlers set before. Returns it."""
    value = _to_level_value(level)
    if disable_existing_loggers:
        for other in list(logging.root.manager.loggerDict.values()):
            if isinstance(other, logging.Logger) and not other.name.startswith(name):
                other.disabled = True
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()  # as logging.config does; a StreamHandler leaves its stream open
    logger.setLevel(value)
    logger.propagate = propagate
    if console:
        logger.addHandler(_console_handler(color, value))
    return logger


def _file_handler(path: str, level: int) -> logging.FileHandler:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(DEFAULT_FORMAT, DATE_FORMAT))
    return handler


def _attach_file(logger: logging.Logger, path: str, level: int) -> None:
    target = os.path.abspath(path)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler) and handler.baseFilename == target:
            return  # idempotent per file
    logger.addHandler(_file_handler(target, level))


def setup(
    level: Level = "INFO",
    *,
    console: bool = True,
    color: Union[bool, Mapping[str, Any]] = True,
    propagate: bool = False,
    disable_existing_loggers: bool = False,
    capture_warnings: bool = False,
    submodule_levels: Optional[Mapping[str, Level]] = None,
    extra_handlers: Optional[Iterable[logging.Handler]] = None,
    formatter: Optional[logging.Formatter] = None,
    apply_to: Optional[Iterable[str]] = None,
    files: Union[str, Mapping[str, str], None] = None,
) -> logging.Logger:
    """Configure the ``agentlightning`` logger (exported as ``agl.setup_logging``) and return it.

    Args:
        level: the base level. console/color/propagate/disable_existing_loggers: as in :func:`setup_module`.
        capture_warnings: route :mod:`warnings` through logging (``py.warnings``).
        submodule_levels: levels of child loggers, e.g. ``{"agentlightning.store": "DEBUG"}``.
        extra_handlers: more handlers for the base logger (added once each).
        formatter: set on every base handler that has none.
        apply_to: other loggers (e.g. a plugin's ``agentlightning_litellm``) given the base logger's handlers and
            level, not propagating.
        files: a path (one file handler on the base logger) or ``{logger name: path}`` (one per logger, at that
            logger's effective level). Calling again with the same paths adds no second handler.
    """
    if sys.platform == "win32":
        os.environ.setdefault("PYTHONUTF8", "1")
    base = setup_module(
        level,
        console=console,
        color=color,
        propagate=propagate,
        disable_existing_loggers=disable_existing_loggers,
    )
    base_level = base.level
    for handler in extra_handlers or ():
        if handler not in base.handlers:
            base.addHandler(handler)
    if formatter is not None:
        for handler in base.handlers:
            if handler.formatter is None:
                handler.setFormatter(formatter)
    for name, sub_level in (submodule_levels or {}).items():
        value = _to_level_value(sub_level)
        logging.getLogger(name).setLevel(value)
        if value < base_level:
            base.warning(
                "Logger %s is set to %s, more verbose than agentlightning's %s: its records below %s reach no handler "
                "of agentlightning's",
                name,
                logging.getLevelName(value),
                logging.getLevelName(base_level),
                logging.getLevelName(base_level),
            )
    if isinstance(files, str):
        _attach_file(base, files, base_level)
    elif files is not None:
        for name, path in files.items():
            logger = logging.getLogger(name)
            _attach_file(logger, path, logger.getEffectiveLevel())
    for name in apply_to or ():
        other = logging.getLogger(name)
        for handler in list(other.handlers):
            other.removeHandler(handler)
            if handler not in base.handlers:
                handler.close()
        for handler in base.handlers:
            other.addHandler(handler)
        other.setLevel(base_level)
        other.propagate = False
    if capture_warnings:
        logging.captureWarnings(True)
    return base


def configure_logger(level: int = logging.INFO, name: str = "agentlightning") -> logging.Logger:
    """Deprecated: use :func:`setup` (``agl.setup_logging``) or :func:`setup_module`."""
    warnings.warn(
        "configure_logger() is deprecated: use agentlightning.setup_logging() or setup_module_logging()",
        DeprecationWarning,
        stacklevel=2,
    )
    return setup_module(level, name=name, console=True, color=True, propagate=False)
