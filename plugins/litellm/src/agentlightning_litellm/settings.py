"""The proxy's settings: what the serving process needs, picklable."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import attrs

__all__ = ["ProxySettings", "check_model_list"]


def check_model_list(model_list: Any) -> List[Dict[str, Any]]:
    """Validate a LiteLLM-style model list: ``[{"model_name": ..., "litellm_params": {"model": ..., ...}}, ...]``."""
    if not isinstance(model_list, list):
        raise ValueError(f"model_list must be a list of {{model_name, litellm_params}} dicts, got {model_list!r}")
    out = []
    for i, entry in enumerate(model_list):
        if not isinstance(entry, dict) or not isinstance(entry.get("model_name"), str) or not entry["model_name"]:
            raise ValueError(f"model_list[{i}] needs a non-empty string 'model_name', got {entry!r}")
        params = entry.get("litellm_params")
        if not isinstance(params, dict) or not isinstance(params.get("model"), str) or not params["model"]:
            raise ValueError(
                f"model_list[{i}] ({entry['model_name']!r}) needs 'litellm_params' with a string 'model' "
                f"such as 'hosted_vllm/Qwen2.5-0.5B', got {params!r}"
            )
        out.append({"model_name": entry["model_name"], "litellm_params": dict(params)})
    return out


@attrs.define(kw_only=True)
class ProxySettings:
    """How the gateway calls backends and records calls.

    Args:
        model_list: LiteLLM-style deployments; a ``model_name`` of ``"*"`` serves any requested name.
        litellm_config: ``{"litellm_settings": {...}}`` is applied to the ``litellm`` module (upstream's YAML keys).
        num_retries: LiteLLM's retries of a failed backend call.
        timeout: seconds the backend may take to answer, and to send each next chunk of a stream (None: 600 s);
            enforced by the gateway as a wall-clock bound whatever the HTTP transport does.
        return_token_ids: ask vLLM-style backends for ``return_token_ids`` (chat and text completions).
        logprobs: ask for logprobs of the sampled tokens when the request did not say.
        retry_seconds: how long undelivered spans are retried when the store is unreachable.
        use_otlp: send spans over OTLP (None: when the store supports it).
    """

    model_list: List[Dict[str, Any]] = attrs.field(factory=list, converter=check_model_list)
    litellm_config: Dict[str, Any] = attrs.field(factory=dict)
    num_retries: int = 0
    timeout: Optional[float] = None
    return_token_ids: bool = True
    logprobs: bool = False
    retry_seconds: float = 60.0
    use_otlp: Optional[bool] = None

    def model_names(self) -> List[str]:
        names: List[str] = []
        for entry in self.model_list:
            if entry["model_name"] not in names:
                names.append(entry["model_name"])
        return names
