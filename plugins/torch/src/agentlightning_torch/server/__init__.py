"""The policy server: an OpenAI-compatible endpoint for the policy being trained."""

from .app import PolicyServer, RequestError, parse_request
from .spans import LLM_SPAN_NAME, POLICY_VERSION_ATTRIBUTE

__all__ = ["PolicyServer", "RequestError", "parse_request", "LLM_SPAN_NAME", "POLICY_VERSION_ATTRIBUTE"]
