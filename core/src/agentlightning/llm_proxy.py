"""Upstream's module path of ``LLMProxy`` (provided by the ``agentlightning-litellm`` plugin).

Upstream's reference lists the proxy's building blocks (``LightningSpanExporter``, ``StreamConversionMiddleware``...)
as internal API. Our proxy records spans and converts streams inside its own gateway (``agentlightning_litellm``), so
those names exist here only so that imports of them work: building one raises ``NotImplementedError`` saying so.
``ModelConfig`` is the shape of a ``model_list`` entry, as upstream's.
"""

from __future__ import annotations

from typing import Any, Dict, TypedDict

from agentlightning._reexport import lazy_exports

__all__ = ["LLMProxy"]  # noqa: F822 (resolved lazily by __getattr__)

__getattr__, __dir__ = lazy_exports(__name__, {"LLMProxy": "agentlightning_litellm.proxy:LLMProxy"}, plugin="litellm")


class ModelConfig(TypedDict):
    """One entry of LiteLLM's ``model_list``: the name the proxy serves and the parameters LiteLLM calls with."""

    model_name: str
    litellm_params: Dict[str, Any]


class _ProxyInternal:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} is upstream v0.3's LiteLLM-proxy internal; this package's LLMProxy records spans "
            "and converts streams in its own gateway (agentlightning_litellm, see docs/litellm.md)"
        )


class LightningSpanExporter(_ProxyInternal):
    """Upstream's exporter of the proxy's spans to the store (stand-in)."""


class LightningOpenTelemetry(_ProxyInternal):
    """Upstream's LiteLLM OpenTelemetry callback (stand-in)."""


class AddReturnTokenIds(_ProxyInternal):
    """Upstream's LiteLLM hook asking vLLM for token ids (stand-in)."""


class StreamConversionMiddleware(_ProxyInternal):
    """Upstream's ASGI middleware serving a streamed answer from a non-streamed one (stand-in)."""


class MessageInspectionMiddleware(_ProxyInternal):
    """Upstream's ASGI middleware logging requests and answers (stand-in)."""


class RolloutAttemptMiddleware(_ProxyInternal):
    """Upstream's ASGI middleware reading the rollout and attempt from the URL (stand-in)."""
