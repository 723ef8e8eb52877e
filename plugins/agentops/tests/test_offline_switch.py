"""The service switch: AgentOps' exporters skip while it is off and call through when it is on."""

from __future__ import annotations

from typing import Any, Iterator, List

import pytest
from agentlightning_agentops import offline
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.trace.export import SpanExportResult


@pytest.fixture
def service_off() -> Iterator[None]:
    offline.enable_agentops_service(False)
    yield
    offline.enable_agentops_service(False)


def test_span_exporter_bypass(monkeypatch: pytest.MonkeyPatch, service_off: None) -> None:
    from agentops.sdk.exporters import AuthenticatedOTLPExporter

    calls: List[Any] = []
    monkeypatch.setattr(AuthenticatedOTLPExporter, "export", lambda self, spans: calls.append(spans) or "SENT")
    exporter = offline._bypassable_span_exporter()(endpoint="http://127.0.0.1:9/v1/traces")
    assert isinstance(exporter, AuthenticatedOTLPExporter)
    assert exporter.export(["span"]) == SpanExportResult.SUCCESS
    assert calls == []
    offline.enable_agentops_service()
    assert offline.is_agentops_service_enabled()
    assert exporter.export(["span"]) == "SENT"
    assert calls == [["span"]]


def test_metric_exporter_bypass(monkeypatch: pytest.MonkeyPatch, service_off: None) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    calls: List[Any] = []
    monkeypatch.setattr(OTLPMetricExporter, "export", lambda self, data, **kw: calls.append(data) or "SENT")
    exporter = offline._bypassable_metric_exporter()(endpoint="http://127.0.0.1:9/v1/metrics")
    assert exporter.export("metrics") == MetricExportResult.SUCCESS
    assert calls == []
    offline.enable_agentops_service()
    assert exporter.export("metrics") == "SENT"
    assert calls == ["metrics"]
