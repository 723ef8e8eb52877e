"""``agl verl check``: is the GPU stack there, and does a config compose?"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional

from .deps import GPU_MODULES, INSTALL_HINT, gpu_status


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verl_command", metavar="SUBCOMMAND")
    check = sub.add_parser("check", help="Report which GPU modules are installed; optionally validate a config.")
    check.add_argument("--config", help="A JSON file with a VERL config to compose and validate.")
    check.add_argument("overrides", nargs="*", help="key.path=value overrides applied to the config.")
    check.set_defaults(func=handle_check)

    def usage(_: argparse.Namespace) -> int:
        parser.print_help()
        return 0

    parser.set_defaults(func=usage)


def handle_check(args: argparse.Namespace) -> int:
    status = gpu_status()
    for name, ok in status.items():
        print(f"{name:<10} {'ok' if ok else 'MISSING':<8} {GPU_MODULES[name]}")
    code = 0
    if not all(status.values()):
        print(f"GPU extra incomplete: {INSTALL_HINT}", file=sys.stderr)
        code = 1
    if args.config or args.overrides:
        code = max(code, _check_config(args.config, args.overrides))
    return code


def _check_config(path: str | None, overrides: List[str]) -> int:
    from .config import compose_config

    try:
        user = {}
        if path:
            with open(path, encoding="utf-8") as handle:
                user = json.load(handle)
        compose_config(user, overrides, base=_verl_defaults())
    except (OSError, ValueError) as exc:  # ConfigError is a ValueError, and so is bad JSON
        print(f"config: {exc}", file=sys.stderr)
        return 2
    print("config: ok")
    return 0


def _verl_defaults() -> Optional[Dict[str, Any]]:
    """verl's own defaults when verl is installed (keys are then checked strictly), else None."""
    status = gpu_status()
    if not (status["verl"] and status["omegaconf"]):
        return None
    try:
        from .verl_backend import verl_default_config

        return verl_default_config()
    except Exception as exc:  # noqa: BLE001 - a broken verl install must not hide the config check itself
        print(f"config: verl's defaults could not be loaded ({exc}); checking our keys only", file=sys.stderr)
        return None
