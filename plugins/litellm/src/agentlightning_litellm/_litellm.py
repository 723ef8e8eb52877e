"""Importing LiteLLM: on first use only, offline, and quiet."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["import_litellm"]


def import_litellm() -> Any:
    """The ``litellm`` module, imported with its bundled model-cost map (it would otherwise fetch one over the network
    at import, retrying for ~10 s when offline)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm
