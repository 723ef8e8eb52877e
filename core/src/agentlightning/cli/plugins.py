"""``agl plugins``: what is installed, what each plugin registers, and what failed."""

from __future__ import annotations

import argparse
import json
import sys

from agentlightning.plugins import get_plugin_manager


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="Print machine-readable JSON.")
    parser.add_argument("--strict", action="store_true", help="Exit with status 1 when any plugin failed to load.")
    parser.add_argument(
        "-d", "--details", action="store_true", help="Also print each component's description (missing extras, ...)."
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    manager = get_plugin_manager()
    plugins = manager.plugins()
    failures = manager.failures
    if args.json:
        payload = {
            "plugins": [
                {
                    "name": p.name,
                    "distribution": p.distribution,
                    "version": p.version,
                    "registrations": p.registrations,
                }
                for p in plugins
            ],
            "failures": [
                {
                    "name": f.name,
                    "distribution": f.distribution,
                    "version": f.version,
                    "phase": f.phase,
                    "error": f.error,
                }
                for f in failures
            ],
        }
        print(json.dumps(payload, indent=2))
    else:
        for p in plugins:
            dist = f"{p.distribution} {p.version}" if p.distribution else "(registered by hand)"
            print(f"{p.name:<20} {dist}")
            for kind, names in sorted(p.registrations.items()):
                print(f"    {kind:<22} {', '.join(names)}")
                if args.details:
                    for name in names:
                        registration = manager.registry(kind).get(name)
                        if registration is not None and registration.description:
                            print(f"        {name}: {registration.description}")
        for f in failures:
            print(f"FAILED {f.describe()}", file=sys.stderr)
    return 1 if (args.strict and failures) else 0
