"""Parser assembly and dispatch for ``agl``."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from typing import Callable, List, Optional, Sequence

CommandFactory = Callable[[argparse.ArgumentParser], None]

# Core's own commands: name -> (help, "module:function" that configures the parser).
CORE_COMMANDS = {
    "plugins": ("List installed plugins, what they register, and failures.", "agentlightning.cli.plugins:configure"),
    "dev": ("Run an agent over a JSONL dataset with the Baseline algorithm.", "agentlightning.cli.dev:configure"),
    "eval": ("Reward statistics of an agent over a held-out JSONL split.", "agentlightning.cli.eval:configure"),
    "export": ("Stream a store's traces to a file as training data.", "agentlightning.cli.transfer:configure_export"),
    "import": ("Replay a traces export into a store (idempotent).", "agentlightning.cli.transfer:configure_import"),
    "doctor": (
        "Check LLM capture: libraries, and LLM spans / token ids in a store.",
        "agentlightning.cli.doctor:configure",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The full ``agl`` parser: core commands plus every command that plugins register."""
    from agentlightning import __version__
    from agentlightning.plugins import get_plugin_manager
    from agentlightning.plugins.registry import resolve_factory

    parser = argparse.ArgumentParser(prog="agl", description="Agent Lightning: train AI agents.")
    parser.add_argument("--version", action="version", version=f"agl (agentlightning-core) {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="More log output (repeatable).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, target) in CORE_COMMANDS.items():
        resolve_factory(target)(sub.add_parser(name, help=help_text, description=help_text))
    manager = get_plugin_manager()
    for registration in manager.registry("commands"):
        if registration.name in CORE_COMMANDS:
            continue
        help_text = registration.description or f"Provided by plugin {registration.plugin}."
        command_parser = sub.add_parser(registration.name, help=help_text, description=help_text)
        try:
            registration.load()(command_parser)
        except Exception as exc:  # noqa: BLE001 - a broken plugin command must not break the others
            command_parser.set_defaults(func=_broken(registration.plugin, registration.name, exc))
    return parser


def _broken(plugin: str, name: str, exc: Exception) -> Callable[[argparse.Namespace], int]:
    def handler(_: argparse.Namespace) -> int:
        print(f"agl {name}: plugin {plugin!r} failed to set up this command: {exc}", file=sys.stderr)
        return 2

    return handler


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of the ``agl`` console script."""
    from agentlightning.plugins.errors import AgentLightningPluginWarning

    arguments = list(argv) if argv is not None else sys.argv[1:]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AgentLightningPluginWarning)
        parser = build_parser()
    if "plugins" not in arguments:  # `agl plugins` reports failures itself
        for warning in caught:
            print(f"agl: warning: {warning.message}", file=sys.stderr)
    args = parser.parse_args(arguments)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        sys.exit(0)
    sys.exit(int(func(args) or 0))


def command_names(parser: argparse.ArgumentParser) -> List[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    return []
