"""``AgentOpsTracer``: AgentOps' instrumentation, delivered to the store by :class:`OtelTracer`'s span pipeline.

AgentOps records spans on its own SDK ``TracerProvider`` (global when the application had none). In
``init_worker`` this tracer initialises AgentOps offline (unless the application already did, or the service is
enabled: :mod:`agentlightning_agentops.offline`), patches its instrumentation
(:mod:`agentlightning_agentops.instrumentation`), turns it on, and attaches :class:`OtelTracer`'s
``LightningSpanProcessor`` to AgentOps' provider. Each ``trace_context`` is also an AgentOps trace: its root span
``<name>.session`` ends with state OK, or ERROR when the body raised.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, List, Optional

from agentlightning.tracer.otel import OtelTracer

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore
    from opentelemetry import trace as trace_api
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["AgentOpsTracer"]

logger = logging.getLogger(__name__)


class AgentOpsTracer(OtelTracer):
    """Trace agents with AgentOps' instrumentation (OpenAI, Anthropic, agent frameworks, ...) into the store.

    Args:
        agentops_managed: initialise AgentOps in ``init_worker`` (offline unless
            :func:`~agentlightning_agentops.enable_agentops_service` was called), unless the application already
            has. False: the application must call ``agentops.init`` itself before ``init_worker``.
        instrument_managed: patch AgentOps' instrumentation (token ids, LangChain) and turn it on in
            ``init_worker``; undo both in ``teardown_worker`` (instrumentation the application had turned on stays).
        daemon: accepted for upstream compatibility; the span flusher is always a daemon thread.
        agentops_init_kwargs: extra keyword arguments for ``agentops.init`` (``auto_start_session`` is always False).
        **otel_kwargs: :class:`OtelTracer` options (``batch_size``, ``flush_interval``, ``flush_timeout``,
            ``tracer_provider``, ``instrument``; the last defaults to False here, as AgentOps instruments openai).
    """

    def __init__(
        self,
        *,
        agentops_managed: bool = True,
        instrument_managed: bool = True,
        daemon: bool = True,
        agentops_init_kwargs: Optional[dict[str, Any]] = None,
        **otel_kwargs: Any,
    ) -> None:
        otel_kwargs.setdefault("instrument", False)
        super().__init__(**otel_kwargs)
        self.agentops_managed = agentops_managed
        self.instrument_managed = instrument_managed
        self.daemon = daemon
        self.agentops_init_kwargs = dict(agentops_init_kwargs or {})
        self._agentops_instrumented = False
        self._also_attached: List[TracerProvider] = []

    # -- lifecycle -------------------------------------------------------------------------------------------

    def _agentops_provider(self) -> TracerProvider:
        from agentops.sdk.core import tracer as agentops_core
        from opentelemetry.sdk.trace import TracerProvider

        from .offline import offline_init

        if self.agentops_managed:
            kwargs = {"instrument_llm_calls": False, **self.agentops_init_kwargs, "auto_start_session": False}
            offline_init(**kwargs)
        provider = agentops_core.provider if agentops_core.initialized else None
        if not isinstance(provider, TracerProvider):
            raise RuntimeError(
                "AgentOps is not initialised: call agentops.init() before init_worker(), or use "
                "AgentOpsTracer(agentops_managed=True)"
            )
        return provider

    def init_worker(self, worker_id: int, store: Optional[LightningStore] = None) -> None:
        agentops_provider = self._agentops_provider()
        if self._requested_provider is None:
            self._requested_provider = agentops_provider
        super().init_worker(worker_id, store)
        self._attach_to_other_providers(agentops_provider)
        if self.instrument_managed:
            self._instrument()

    def _attach_to_other_providers(self, agentops_provider: TracerProvider) -> None:
        """Collect from AgentOps' provider and from the global one, whichever is not :attr:`tracer_provider`.

        AgentOps' instrumentors record on its own provider, but its SDK spans (the trace's ``*.session`` root,
        ``@agentops.agent`` / ``@operation`` decorators) go to whatever provider is global, which is another one
        when the application set its own first.
        """
        from opentelemetry import trace as trace_api
        from opentelemetry.sdk.trace import TracerProvider

        for provider in (agentops_provider, trace_api.get_tracer_provider()):
            if provider is self.tracer_provider or any(provider is p for p in self._also_attached):
                continue
            if not isinstance(provider, TracerProvider):
                logger.warning(
                    "The global OpenTelemetry provider is a %s, not an SDK TracerProvider: AgentOps' trace and "
                    "decorator spans recorded on it will not reach the store",
                    type(provider).__name__,
                )
                continue
            assert self.processor is not None
            provider.add_span_processor(self.processor)
            self._also_attached.append(provider)

    def _instrument(self) -> None:
        from .instrumentation import instrument_agentops, patch_agentops

        if not self._agentops_instrumented:
            patch_agentops()
            instrument_agentops()
            self._agentops_instrumented = True

    def teardown_worker(self, worker_id: int) -> None:
        try:
            super().teardown_worker(worker_id)
        finally:
            if self._agentops_instrumented:
                from .instrumentation import uninstrument_agentops, unpatch_agentops

                uninstrument_agentops()
                unpatch_agentops()
                self._agentops_instrumented = False

    # -- trace contexts --------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def trace_context(
        self,
        name: Optional[str] = None,
        *,
        store: Optional[LightningStore] = None,
        rollout_id: Optional[str] = None,
        attempt_id: Optional[str] = None,
    ) -> AsyncIterator[trace_api.Tracer]:
        """:meth:`OtelTracer.trace_context` around an AgentOps trace named ``name`` (default: the rollout id)."""
        async with super().trace_context(name, store=store, rollout_id=rollout_id, attempt_id=attempt_id) as tracer:
            trace = _start_trace(name or rollout_id or "agentlightning")
            try:
                yield tracer
            except BaseException as exc:
                _end_trace(trace, exc)
                raise
            _end_trace(trace, None)

    def get_langchain_handler(self, tags: Optional[List[str]] = None) -> Any:
        """AgentOps' LangChain callback handler (needs ``langchain-core``); its spans join the open trace."""
        from agentops.integration.callbacks.langchain import LangchainCallbackHandler

        return LangchainCallbackHandler(tags=tags, auto_session=False)


def _start_trace(name: str) -> Any:
    from agentops.sdk.core import tracer as agentops_core

    if not agentops_core.initialized:  # agentops.start_trace() would initialise AgentOps online: never from here
        logger.warning("AgentOps is not initialised; the trace context has no AgentOps trace")
        return None
    return agentops_core.start_trace(trace_name=name)


def _end_trace(trace: Any, error: Optional[BaseException]) -> None:
    """End the AgentOps trace: span status and ``agentops.session.end_state`` are OK, or ERROR if the body raised."""
    if trace is None:
        return
    from agentops.sdk.core import tracer as agentops_core
    from opentelemetry.trace import Status, StatusCode

    try:
        if error is None:
            trace.span.set_status(Status(StatusCode.OK))
        else:
            trace.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        agentops_core.end_trace(trace, end_state="OK" if error is None else "ERROR")
    except Exception:  # ending AgentOps' trace must not replace the agent's own outcome
        logger.exception("Could not end the AgentOps trace")
