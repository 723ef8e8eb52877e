"""The runners' tracer: core's OpenTelemetry tracer without client instrumentation (the policy server already
records every LLM call with token ids, so client-side ``openai.chat.completion`` spans would only duplicate them)."""

from __future__ import annotations

from typing import Any

from agentlightning.tracer.otel import OtelTracer

__all__ = ["QuickstartTracer"]


class QuickstartTracer(OtelTracer):
    """``OtelTracer(instrument=False)``; rebuilt with these defaults in each runner process."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("instrument", False)
        super().__init__(**kwargs)
