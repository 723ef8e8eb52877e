"""Spans of one attempt -> token-id triplets, through core's adapters.

The policy server records LLM-proxy-shaped spans, so :class:`~agentlightning.adapter.LlmProxyTraceToTriplet` reads
them: LLM calls in sequence order with their prompt and response token ids, each reward given to the latest earlier
LLM call that has none.
"""

from __future__ import annotations

from typing import Any, List, Sequence

from agentlightning.types.core import Triplet

__all__ = ["spans_to_triplets", "core_adapter"]


def core_adapter() -> Any:
    """Core's adapter for LLM-proxy spans (what the policy server records)."""
    from agentlightning.adapter import LlmProxyTraceToTriplet

    return LlmProxyTraceToTriplet()


def spans_to_triplets(spans: Sequence[Any], adapter: Any = None) -> List[Triplet]:
    """Triplets of one attempt's spans, by ``adapter`` (default: :func:`core_adapter`). An adapter that finds no
    token-id triplet where the proxy adapter would (e.g. the Trainer's default ``TracerTraceToTriplet``, which looks
    for client-side ``openai.chat.completion`` spans) is backed up by the proxy adapter."""
    spans = list(spans)
    proxy = core_adapter()
    triplets = list((adapter or proxy).adapt(spans))
    if adapter is not None and not any(t.prompt.get("token_ids") for t in triplets):
        triplets = list(proxy.adapt(spans))
    return triplets
