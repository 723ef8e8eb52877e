"""``agl quickstart --algorithm apo``: run the room-selector example against the configured endpoint.

The ``quickstart`` command (agentlightning-torch) calls :func:`main` with its parsed arguments; ``--run-dir``,
``--runners``, ``--seed`` and ``--quiet`` carry over. The endpoint and models come from the environment
(``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``OPENAI_MODEL`` or ``AGENT_MODEL`` / ``APO_GRADIENT_MODEL`` /
``APO_EDIT_MODEL``).
"""

from __future__ import annotations

import argparse
from typing import Any, List, Optional, Sequence, Union

from .examples import load_room_selector

__all__ = ["main"]


def main(args: Union[argparse.Namespace, Sequence[str], None] = None) -> int:
    """Run the example; ``args`` is the quickstart's namespace, or ``run_apo.py`` arguments as a list."""
    module: Any = load_room_selector()
    argv: Optional[List[str]]
    if isinstance(args, argparse.Namespace):
        argv = module.quickstart_argv(args)
    else:
        argv = list(args) if args is not None else None
    return int(module.main(argv) or 0)
