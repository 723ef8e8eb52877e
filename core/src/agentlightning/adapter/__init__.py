"""Adapters: spans to triplets (:class:`TracerTraceToTriplet`, :class:`LlmProxyTraceToTriplet`) or to OpenAI
chat messages (:class:`TraceToMessages`)."""

from __future__ import annotations

from .base import Adapter, OtelTraceAdapter, TraceAdapter
from .llm_proxy import LlmProxyTraceToTriplet
from .messages import OpenAIMessages, TraceToMessages
from .triplet import RewardMatchPolicy, TracerTraceToTriplet, TraceToTripletBase, TraceTree, Transition

__all__ = [
    "Adapter",
    "TraceAdapter",
    "OtelTraceAdapter",
    "TraceToTripletBase",
    "TracerTraceToTriplet",
    "LlmProxyTraceToTriplet",
    "TraceToMessages",
    "OpenAIMessages",
    "TraceTree",
    "RewardMatchPolicy",
    "Transition",
]
