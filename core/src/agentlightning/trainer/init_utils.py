"""Upstream's module path of the component builders (``build_component`` and its helpers)."""

from __future__ import annotations

from .build import build_component, instantiate_component, instantiate_from_spec, load_class

__all__ = ["build_component", "instantiate_component", "instantiate_from_spec", "load_class"]
