"""The Trainer and the rules that build its components from specs."""

from __future__ import annotations

from .build import build_component, instantiate_component, instantiate_from_spec, load_class
from .progress import ProgressLine, ProgressReporter, ProgressSnapshot
from .trainer import Trainer

__all__ = [
    "Trainer",
    "build_component",
    "instantiate_component",
    "instantiate_from_spec",
    "load_class",
    "ProgressReporter",
    "ProgressSnapshot",
    "ProgressLine",
]
