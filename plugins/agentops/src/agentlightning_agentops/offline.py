"""Keep AgentOps off the network unless the user turns its service on.

``agentops.init`` builds an OTLP span exporter and a metric exporter aimed at AgentOps' servers, fetches an auth
token when it finds an API key, and uploads captured ``print`` output when its first root span ends.
:func:`offline_init` runs ``agentops.init`` with the two exporter classes replaced, for that call only, by
subclasses that skip exporting while the service is disabled, and without the auth request. Afterwards it turns off
the upload of ``print`` output (and gives ``print`` back) while the service is disabled.

:func:`enable_agentops_service` flips one process-wide switch, read at each export; it is off by default. To send
data to AgentOps, enable it *before* the tracer's ``init_worker`` (the auth token is fetched only at init).
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import threading
from typing import Any, Dict, Iterator, Optional, Sequence, Type

__all__ = ["enable_agentops_service", "is_agentops_service_enabled", "offline_init", "agentops_initialized"]

logger = logging.getLogger(__name__)

_service_enabled = False
_init_lock = threading.Lock()
_class_cache: Dict[str, Type[Any]] = {}


def enable_agentops_service(enabled: bool = True) -> None:
    """Allow (or forbid again) exports, auth and uploads to the AgentOps service, process-wide."""
    global _service_enabled
    _service_enabled = bool(enabled)


def is_agentops_service_enabled() -> bool:
    return _service_enabled


def agentops_initialized() -> bool:
    """Whether AgentOps' tracing core is set up (by us or by the application)."""
    from agentops.sdk.core import tracer

    return bool(tracer.initialized)


def _bypassable_span_exporter() -> Type[Any]:
    if "span" not in _class_cache:
        from agentops.sdk.exporters import AuthenticatedOTLPExporter
        from opentelemetry.sdk.trace.export import SpanExportResult

        class BypassableOTLPSpanExporter(AuthenticatedOTLPExporter):  # type: ignore[misc]
            """AgentOps' span exporter that reports success without sending while the service is disabled."""

            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                if not _service_enabled:
                    return SpanExportResult.SUCCESS
                return super().export(spans)  # type: ignore[no-any-return]

        _class_cache["span"] = BypassableOTLPSpanExporter
    return _class_cache["span"]


def _bypassable_metric_exporter() -> Type[Any]:
    if "metric" not in _class_cache:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import MetricExportResult

        class BypassableOTLPMetricExporter(OTLPMetricExporter):
            """AgentOps' metric exporter that reports success without sending while the service is disabled."""

            def export(
                self, metrics_data: Any, timeout_millis: Optional[float] = None, **kwargs: Any
            ) -> MetricExportResult:
                if not _service_enabled:
                    return MetricExportResult.SUCCESS
                return super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)

        _class_cache["metric"] = BypassableOTLPMetricExporter
    return _class_cache["metric"]


@contextlib.contextmanager
def _swapped(obj: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, original)


def _offline_upload(log_content: Any, trace_id: Any) -> Dict[str, Any]:
    return {}


def _quiet_client(client: Any) -> None:
    """Stop the print capture and log upload of an offline client (they would only buffer or send)."""
    from agentops.logging import instrument_logging

    if builtins.print is getattr(instrument_logging, "print_logger", None):
        builtins.print = instrument_logging._original_print
    api = getattr(client, "api", None)
    v4 = getattr(api, "v4", None)
    if v4 is not None:
        original = v4.upload_logfile

        def upload_logfile(body: Any, trace_id: Any) -> Any:
            return original(body, trace_id) if _service_enabled else _offline_upload(body, trace_id)

        v4.upload_logfile = upload_logfile


def offline_init(**init_kwargs: Any) -> bool:
    """``agentops.init(**init_kwargs)`` that makes no connection while the service is disabled.

    Returns False, doing nothing, when AgentOps is already initialised (by the application: its setup is kept).
    """
    import agentops
    import agentops.client.client as client_module
    import agentops.sdk.core as core_module

    with _init_lock:
        if agentops_initialized():
            return False
        if _service_enabled:
            agentops.init(**init_kwargs)
            return True
        client = agentops.get_client()
        init_kwargs.setdefault("log_session_replay_url", False)
        with contextlib.ExitStack() as stack:
            stack.enter_context(_swapped(core_module, "AuthenticatedOTLPExporter", _bypassable_span_exporter()))
            stack.enter_context(_swapped(core_module, "OTLPMetricExporter", _bypassable_metric_exporter()))
            stack.enter_context(_swapped(client_module.Client, "_start_auth_task", _no_auth))
            agentops.init(**init_kwargs)
        _quiet_client(client)
        logger.debug("AgentOps initialised offline (enable_agentops_service() to send data to AgentOps)")
        return True


def _no_auth(self: Any, api_key: Optional[str]) -> None:
    logger.debug("AgentOps service disabled: no auth token requested")
