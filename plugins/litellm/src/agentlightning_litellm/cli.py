"""``agl proxy serve``: run the LLM proxy in the foreground."""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List

__all__ = ["configure_parser", "serve_command", "model_list_from_args"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``serve`` (and its options) under the ``proxy`` command."""
    commands = parser.add_subparsers(dest="proxy_command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the LLM proxy (OpenAI/Anthropic routes, calls recorded)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one, printed at start)")
    serve.add_argument(
        "--store", default=None, help="store URL the calls are recorded into (e.g. http://127.0.0.1:4747)"
    )
    serve.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=LITELLM_MODEL[@API_BASE]",
        help="a served model, e.g. qwen=hosted_vllm/Qwen2.5-0.5B@http://127.0.0.1:8000/v1 (repeatable)",
    )
    serve.add_argument("--model-list", default=None, help="a JSON or YAML file with a LiteLLM model_list")
    serve.add_argument("--num-retries", type=int, default=0)
    serve.add_argument("--timeout", type=float, default=None, help="seconds for one backend call")
    serve.add_argument("--logprobs", action="store_true", help="ask backends for logprobs")
    serve.add_argument("--no-token-ids", action="store_true", help="do not ask backends for return_token_ids")
    serve.set_defaults(func=serve_command)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def model_list_from_args(args: argparse.Namespace) -> List[Dict[str, Any]]:
    models: List[Dict[str, Any]] = []
    if args.model_list:
        with open(args.model_list, encoding="utf-8") as f:
            text = f.read()
        try:
            data: Any = json.loads(text)
        except ValueError:
            import yaml

            data = yaml.safe_load(text)
        models.extend(data.get("model_list", []) if isinstance(data, dict) else data)
    for spec in args.model:
        name, sep, target = spec.partition("=")
        if not sep or not name or not target:
            raise SystemExit(f"--model expects NAME=LITELLM_MODEL[@API_BASE], got {spec!r}")
        model, _, api_base = target.partition("@")
        params: Dict[str, Any] = {"model": model}
        if api_base:
            params["api_base"] = api_base
        models.append({"model_name": name, "litellm_params": params})
    return models


def serve_command(args: argparse.Namespace) -> int:
    from .serving import serve_forever
    from .settings import ProxySettings

    try:
        settings = ProxySettings(
            model_list=model_list_from_args(args),
            num_retries=args.num_retries,
            timeout=args.timeout,
            return_token_ids=not args.no_token_ids,
            logprobs=args.logprobs,
        )
    except ValueError as exc:
        raise SystemExit(f"agl proxy serve: {exc}") from None
    store = None
    if args.store:
        from agentlightning.store import open_store

        store = open_store(args.store)
    serve_forever(settings, store, args.host, args.port)
    return 0
