"""Real (if tiny) installed distributions for plugin-loading tests: a dist-info folder plus modules on sys.path."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Dict, List, Optional


def make_dist(
    root: Path,
    name: str,
    *,
    version: str = "1.0",
    entry_points: Dict[str, str],
    modules: Dict[str, str],
    requires: Optional[List[str]] = None,
) -> Path:
    """Write ``modules`` (dotted name -> source) and a dist-info declaring ``entry_points`` (agentlightning group)."""
    root.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        path = root.joinpath(*module.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {r}" for r in requires or []]
    (dist_info / "METADATA").write_text("\n".join(metadata) + "\n")
    lines = ["[agentlightning]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return root
