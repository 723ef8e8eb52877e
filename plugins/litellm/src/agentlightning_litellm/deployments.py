"""Which LiteLLM deployment serves a requested model name."""

from __future__ import annotations

import itertools
from typing import Any, Dict, Iterator, List

__all__ = ["Deployments", "translated_to_chat"]


class Deployments:
    """Model name -> LiteLLM parameters, round robin over entries that share a name; ``"*"`` serves any name
    (a ``litellm_params.model`` ending in ``/*`` gets the requested name in place of the star)."""

    def __init__(self, model_list: List[Dict[str, Any]]) -> None:
        by_name: Dict[str, List[Dict[str, Any]]] = {}
        for entry in model_list:
            by_name.setdefault(entry["model_name"], []).append(entry["litellm_params"])
        self._names = list(by_name)
        self._cycles: Dict[str, Iterator[Dict[str, Any]]] = {n: itertools.cycle(p) for n, p in by_name.items()}

    def names(self) -> List[str]:
        return list(self._names)

    def pick(self, requested: Any) -> Dict[str, Any]:
        """The parameters for the next call to ``requested``; LookupError naming the served models otherwise."""
        name = requested if isinstance(requested, str) else ""
        cycle = self._cycles.get(name) or self._cycles.get("*")
        if cycle is None:
            available = ", ".join(sorted(self._names)) or "none configured"
            raise LookupError(f"model {requested!r} is not served by this proxy (available: {available})")
        params = dict(next(cycle))
        if name not in self._cycles and str(params.get("model", "")).endswith("/*"):
            params["model"] = params["model"][:-1] + name
        return params


def translated_to_chat(kind: str, params: Dict[str, Any]) -> bool:
    """Whether LiteLLM serves an Anthropic call by a chat completion to an OpenAI-compatible (vLLM-style) backend."""
    provider = str(params.get("model", "")).split("/", 1)[0]
    return kind == "anthropic" and provider in ("hosted_vllm", "openai", "openai_like", "vllm")
