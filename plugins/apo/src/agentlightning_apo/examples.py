"""Finding and running the bundled room-selector example (``contrib/examples/room_selector``).

A wheel carries the example as ``agentlightning_apo/_examples/room_selector``; a source checkout (editable install)
uses the repository's ``contrib/examples/room_selector``; ``AGL_ROOM_SELECTOR_DIR`` overrides both.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Optional, Sequence

__all__ = ["room_selector_dir", "load_room_selector", "room_selector_main"]


def room_selector_dir() -> Path:
    """The folder that holds ``run_apo.py`` and ``room_selector.py``."""
    override = os.environ.get("AGL_ROOM_SELECTOR_DIR")
    candidates = [Path(override)] if override else []
    here = Path(__file__).resolve().parent
    candidates.append(here / "_examples" / "room_selector")
    candidates += [parent / "contrib" / "examples" / "room_selector" for parent in here.parents]
    for folder in candidates:
        if (folder / "run_apo.py").is_file() and (folder / "room_selector.py").is_file():
            return folder
    raise FileNotFoundError(
        "the room-selector example was not found (looked in "
        + ", ".join(str(c) for c in candidates[:3])
        + ", ...); set AGL_ROOM_SELECTOR_DIR to its folder"
    )


def load_room_selector(module: str = "run_apo") -> ModuleType:
    """Import ``run_apo`` (or ``room_selector``) from the example folder, which goes on ``sys.path`` so that
    runner processes can import the agent too."""
    folder = str(room_selector_dir())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(module)


def room_selector_main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the example as ``python run_apo.py ARGV`` would."""
    return int(load_room_selector().main(argv) or 0)
