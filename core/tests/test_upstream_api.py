"""Upstream v0.3's module paths, names, shapes and arguments, as code written for it uses them."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import subprocess
import sys
import threading
import warnings
from typing import Any, Dict, List, Optional

import agentlightning as agl
import pytest
from agentlightning.store.base import LightningStore
from hypothesis import given, settings
from hypothesis import strategies as st

# -------------------------------------------------------------------------------------------------- module paths


@pytest.mark.parametrize(
    ("path", "name", "expected"),
    [
        ("agentlightning.store.memory", "InMemoryLightningStore", "agentlightning_memory.store:InMemoryLightningStore"),
        (
            "agentlightning.store.client_server",
            "LightningStoreServer",
            "agentlightning_server.server:LightningStoreServer",
        ),
        (
            "agentlightning.store.client_server",
            "LightningStoreClient",
            "agentlightning_server.client:LightningStoreClient",
        ),
        ("agentlightning.store", "InMemoryLightningStore", "agentlightning_memory.store:InMemoryLightningStore"),
        ("agentlightning.store", "LightningStoreServer", "agentlightning_server.server:LightningStoreServer"),
        ("agentlightning.store", "LightningStoreThreaded", "agentlightning.store.threading:LightningStoreThreaded"),
        ("agentlightning.store", "CollectionBasedLightningStore", "agentlightning.store.engine:EngineLightningStore"),
        (
            "agentlightning.tracer.agentops",
            "LightningSpanProcessor",
            "agentlightning.tracer.otel:LightningSpanProcessor",
        ),
        ("agentlightning.trainer.init_utils", "build_component", "agentlightning.trainer.build:build_component"),
        ("agentlightning.utils.otel", "flatten_attributes", "agentlightning.tracer.attributes:flatten_attributes"),
        ("agentlightning.utils.id", "generate_id", "agentlightning.utils.id:generate_id"),
        ("agentlightning.types", "Hook", "agentlightning.runner.hooks:Hook"),
        ("agentlightning", "setup_logging", "agentlightning.logging:setup"),
        ("agentlightning", "setup_module_logging", "agentlightning.logging:setup_module"),
        ("agentlightning", "LightningEnvVar", "agentlightning.env_var:LightningEnvVar"),
        ("agentlightning", "lightning_cli", "agentlightning.config:lightning_cli"),
        ("agentlightning", "ThreadingEvent", "agentlightning.execution.events:ThreadingEvent"),
        ("agentlightning", "get_tracer_provider", "agentlightning.utils.otel:get_tracer_provider"),
        ("agentlightning", "instrument_all", "agentlightning.instrumentation:instrument_all"),
        ("agentlightning", "set_active_tracer", "agentlightning.tracer.base:set_active_tracer"),
    ],
)
def test_upstream_paths_resolve_to_our_objects(path: str, name: str, expected: str) -> None:
    module_name, _, attribute = expected.partition(":")
    assert getattr(importlib.import_module(path), name) is getattr(importlib.import_module(module_name), attribute)


def test_a_path_whose_plugin_is_missing_names_the_plugin_to_install() -> None:
    from agentlightning._reexport import PluginNotInstalledError, lazy_exports

    getter, listing = lazy_exports("agentlightning.fake", {"Thing": "agentlightning_nosuchplugin.mod:Thing"}, "nosuch")
    with pytest.raises(PluginNotInstalledError, match="pip install agentlightning-nosuch"):
        getter("Thing")
    with pytest.raises(AttributeError, match="Other"):
        getter("Other")
    assert listing() == ["Thing"]


def test_span_like_is_a_union_of_readable_span_and_span() -> None:
    from agentlightning.types import SpanLike
    from agentlightning.types.tracer import SpanLike as same
    from opentelemetry.sdk.trace import ReadableSpan

    assert SpanLike is same
    assert set(SpanLike.__args__) == {ReadableSpan, agl.Span}


def test_import_agentlightning_stays_light() -> None:
    code = (
        "import sys, agentlightning\n"
        "heavy = [m for m in ('opentelemetry.sdk.trace', 'agentlightning.logging', 'agentlightning.utils.metrics',"
        " 'agentlightning.store.memory', 'agentlightning_memory', 'agentlightning_server', 'rich', 'pydantic')"
        " if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ----------------------------------------------------------------------------------------------------- shapes


def test_semconv_groups_and_span_names_are_str_enums() -> None:
    from agentlightning.semconv import LightningSpanAttributes, RewardAttributes
    from agentlightning.types import SpanAttributeNames, SpanNames

    assert LightningSpanAttributes.REWARD.value == "agentlightning.reward"
    assert LightningSpanAttributes.REWARD == "agentlightning.reward"
    assert f"{LightningSpanAttributes.REWARD}.0" == "agentlightning.reward.0"
    assert {"agentlightning.reward": 1}[LightningSpanAttributes.REWARD] == 1
    assert json.dumps({LightningSpanAttributes.TAG: RewardAttributes.REWARD_VALUE}) == '{"agentlightning.tag": "value"}'
    assert "agentlightning.message.body" in [member.value for member in LightningSpanAttributes]
    assert isinstance(SpanNames.REWARD, str) and SpanNames.REWARD.value == "agentlightning.reward"
    assert [m.value for m in SpanAttributeNames] == ["message", "object"]


def test_base_classes_instantiate_and_raise_not_implemented_for_missing_methods() -> None:
    class OnlyResources(LightningStore):
        async def get_latest_resources(self) -> Any:
            return None

    store = OnlyResources()
    assert asyncio.run(store.get_latest_resources()) is None
    with pytest.raises(NotImplementedError, match="OnlyResources does not implement add_span"):
        asyncio.run(store.add_span(None))  # type: ignore[arg-type]

    class BareTracer(agl.Tracer):
        pass

    with pytest.raises(NotImplementedError, match="BareTracer does not implement"):
        BareTracer().create_span("x")


def test_lit_agent_runner_is_generic() -> None:
    assert agl.LitAgentRunner[Dict[str, Any]] is not None
    assert agl.LitAgentRunner.__parameters__


@settings(deadline=None)
@given(
    rollout_id=st.text(min_size=1, max_size=20),
    value=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4),
)
def test_models_answer_pydantic_style_methods(rollout_id: str, value: Dict[str, Any]) -> None:
    rollout = agl.Rollout(rollout_id=rollout_id, input=value, start_time=1.0)
    data = rollout.model_dump()
    assert data["rollout_id"] == rollout_id and data["input"] == value
    assert agl.Rollout.model_validate(data) == rollout
    assert agl.Rollout.model_validate(rollout) is rollout
    assert agl.Rollout.model_validate_json(rollout.model_dump_json()) == rollout
    assert rollout.model_copy(update={"status": "running"}).status == "running"
    assert rollout.status == "queuing"
    assert "input" not in rollout.model_dump(exclude={"input"})
    assert None not in rollout.model_dump(exclude_none=True).values()


def test_model_validate_rejects_bad_data() -> None:
    with pytest.raises(agl.ValidationError):
        agl.Attempt.model_validate({"rollout_id": "r"})


def test_proxy_llm_endpoint_read_by_user_code_warns(caplog: pytest.LogCaptureFixture) -> None:
    llm = agl.ProxyLLM(endpoint="http://127.0.0.1:9/v1", model="m")
    with caplog.at_level(logging.WARNING, logger="agentlightning.types.resources"):
        assert llm.get_base_url("r", "a") == "http://127.0.0.1:9/rollout/r/attempt/a/v1"
        agl.to_dict(llm)
        assert caplog.records == []
        assert llm.endpoint == "http://127.0.0.1:9/v1"
    assert "Accessing 'endpoint' directly on ProxyLLM is discouraged" in caplog.text


# ------------------------------------------------------------------------------------------------------ names


def test_generate_id() -> None:
    from agentlightning.utils.id import generate_id

    ids = {generate_id(12) for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 12 and int(i, 16) >= 0 for i in ids)
    with pytest.raises(ValueError):
        generate_id(0)


@settings(deadline=None)
@given(st.sampled_from(["1", "true", "YES", " on ", "0", "false", "No", "off"]))
def test_resolve_bool_env_var(raw: str) -> None:
    import os

    from agentlightning.env_var import LightningEnvVar, resolve_bool_env_var

    os.environ["AGL_MANAGED_STORE"] = raw
    try:
        expected = raw.strip().lower() in ("1", "true", "yes", "on")
        assert resolve_bool_env_var(LightningEnvVar.AGL_MANAGED_STORE, fallback=not expected) is expected
        assert resolve_bool_env_var(LightningEnvVar.AGL_MANAGED_STORE, override=not expected) is (not expected)
    finally:
        del os.environ["AGL_MANAGED_STORE"]


def test_resolve_env_vars_fall_back_and_reject_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentlightning.env_var import LightningEnvVar, resolve_bool_env_var, resolve_int_env_var, resolve_str_env_var

    monkeypatch.delenv("AGL_SERVER_PORT", raising=False)
    assert resolve_int_env_var(LightningEnvVar.AGL_SERVER_PORT, fallback=4747) == 4747
    monkeypatch.setenv("AGL_SERVER_PORT", "x")
    with pytest.raises(ValueError, match="AGL_SERVER_PORT must be an integer"):
        resolve_int_env_var(LightningEnvVar.AGL_SERVER_PORT)
    monkeypatch.setenv("AGL_MANAGED_STORE", "maybe")
    with pytest.raises(ValueError, match="AGL_MANAGED_STORE"):
        resolve_bool_env_var(LightningEnvVar.AGL_MANAGED_STORE)
    monkeypatch.setenv("AGL_CURRENT_ROLE", "runner")
    assert resolve_str_env_var(LightningEnvVar.AGL_CURRENT_ROLE, fallback="both") == "runner"
    assert LightningEnvVar.AGL_CURRENT_ROLE == "AGL_CURRENT_ROLE"


class Config:
    def __init__(self, name: str, count: int = 1, ratio: Optional[float] = None, flag: bool = False,
                 tags: Optional[List[str]] = None) -> None:  # fmt: skip
        self.name, self.count, self.ratio, self.flag, self.tags = name, count, ratio, flag, tags


def test_lightning_cli_builds_components_from_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["prog", "--config.name", "x", "--config.flag", "yes", "--config.tags", "a", "b"])
    config = agl.lightning_cli(Config)
    assert (config.name, config.count, config.ratio, config.flag, config.tags) == ("x", 1, None, True, ["a", "b"])
    monkeypatch.setattr(sys, "argv", ["prog", "--config.name", "x", "--config.ratio", "none", "--config.count", "3"])
    config = agl.lightning_cli(Config)
    assert (config.count, config.ratio) == (3, None)
    assert agl.lightning_cli() == ()
    monkeypatch.setattr(sys, "argv", ["prog"])
    with pytest.raises(SystemExit):
        agl.lightning_cli(Config)


def test_setup_logging_configures_handlers_files_and_other_loggers(tmp_path: Any) -> None:
    import io

    from agentlightning.logging import DEFAULT_FORMAT, setup, setup_module

    base = logging.getLogger("agentlightning")
    other = logging.getLogger("agentlightning_compat_test")
    saved = (list(base.handlers), base.level, base.propagate)
    try:
        stream = logging.StreamHandler(io.StringIO())
        log_file = tmp_path / "logs" / "agl.log"
        for _ in range(2):  # idempotent
            setup("DEBUG", console=False, extra_handlers=[stream], files=str(log_file), apply_to=[other.name])
        assert base.level == logging.DEBUG and base.propagate is False
        assert [h for h in base.handlers if isinstance(h, logging.FileHandler)][0].baseFilename == str(log_file)
        assert len(base.handlers) == 2 and other.handlers == base.handlers and other.propagate is False
        logging.getLogger("agentlightning.store").debug("hello %s", "there")
        assert "hello there" in stream.stream.getvalue()  # type: ignore[attr-defined]
        for handler in base.handlers:
            handler.flush()
        assert "hello there" in log_file.read_text()
        plain = setup_module("INFO", name="agentlightning_compat_plain", color=False)
        assert plain.handlers[0].formatter._fmt == DEFAULT_FORMAT  # type: ignore[union-attr]
        with pytest.warns(DeprecationWarning, match="configure_logger"):
            agl.configure_logger(name="agentlightning_compat_plain")
        with pytest.raises(ValueError, match="unknown logging level"):
            setup_module("LOUD", name="agentlightning_compat_plain")
    finally:
        for handler in base.handlers:
            if handler not in saved[0]:
                handler.close()
        base.handlers[:] = saved[0]
        base.setLevel(saved[1])
        base.propagate = saved[2]
        for name in ("agentlightning_compat_plain", other.name):
            for handler in logging.getLogger(name).handlers:
                if handler not in saved[0]:
                    handler.close()
            logging.getLogger(name).handlers.clear()


# ---------------------------------------------------------------------------------------------------- metrics


def _parse_exposition(text: str) -> Dict[str, float]:
    samples: Dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def test_in_memory_metrics_render_the_prometheus_text_format() -> None:
    from agentlightning.utils.metrics import InMemoryMetricsBackend

    metrics = InMemoryMetricsBackend()
    metrics.register_counter("agl.http.total", ["method"])
    metrics.register_counter("agl.http.total", ["method"])  # identical: a no-op
    metrics.register_histogram("agl.http.latency", ["method"], buckets=[0.1, 1.0])
    asyncio.run(metrics.inc_counter("agl.http.total", labels={"method": "GET", "extra": "ignored"}))
    metrics.inc("agl.http.total", 2, {"method": "GET"})
    for value in (0.05, 0.5, 5.0):
        asyncio.run(metrics.observe_histogram("agl.http.latency", value, {"method": 'P"OST'}))
    text = metrics.render_prometheus()
    assert "# TYPE agl_http_total_total counter" in text and "# TYPE agl_http_latency histogram" in text
    samples = _parse_exposition(text)
    assert samples['agl_http_total_total{method="GET"}'] == 3
    assert samples['agl_http_latency_bucket{method="P\\"OST",le="0.1"}'] == 1
    assert samples['agl_http_latency_bucket{method="P\\"OST",le="1"}'] == 2
    assert samples['agl_http_latency_bucket{method="P\\"OST",le="+Inf"}'] == 3
    assert samples['agl_http_latency_count{method="P\\"OST"}'] == 3
    assert samples['agl_http_latency_sum{method="P\\"OST"}'] == pytest.approx(5.55)
    with pytest.raises(ValueError, match="Label 'method' is required for Counter 'agl.http.total'"):
        metrics.inc("agl.http.total")
    with pytest.raises(ValueError, match="already registered"):
        metrics.register_histogram("agl.http.total")
    with pytest.raises(ValueError, match="not registered"):
        metrics.inc("nope")


def test_console_metrics_log_rates_and_percentiles(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentlightning.utils import metrics as metrics_module
    from agentlightning.utils.metrics import ConsoleMetricsBackend, InMemoryMetricsBackend, MultiMetricsBackend

    console = ConsoleMetricsBackend(window_seconds=5.0, log_interval_seconds=0.0)
    lines: List[str] = []
    monkeypatch.setattr(console, "_log", lines.append)
    clock = iter([0.0, 1.0, 6.0, 7.0, 8.0, 9.0])
    monkeypatch.setattr(metrics_module.time, "time", lambda: next(clock))
    memory = InMemoryMetricsBackend()
    multi = MultiMetricsBackend([console, memory])
    multi.register_counter("requests", ["path"])
    multi.register_histogram("latency")
    for _ in range(3):
        asyncio.run(multi.inc_counter("requests", labels={"path": "/x"}))
    assert lines[-1] == "requests=0.40/s"  # events at 1 and 6 inside the 5 s window ending at 6
    for value in (0.01, 0.02, 0.03):
        asyncio.run(multi.observe_histogram("latency", value))
    assert lines[-1].split("  ")[0] == "latency=20.00ms,29.00ms,29.80ms"
    assert memory.counter_value("requests", {"path": "/x"}) == 3
    with pytest.raises(ValueError):
        MultiMetricsBackend([])


# ------------------------------------------------------------------------------------------------ store facade


def test_threaded_store_serialises_calls_across_threads_and_loops() -> None:
    class SlowStore(LightningStore):
        def __init__(self) -> None:
            self.active = 0
            self.most = 0
            self.calls = 0

        async def get_latest_resources(self) -> Any:
            self.active += 1
            self.most = max(self.most, self.active)
            await asyncio.sleep(0.01)
            self.calls += 1
            self.active -= 1
            return None

    inner = SlowStore()
    store = agl.LightningStoreThreaded(inner)
    assert store.capabilities["thread_safe"] and store.capabilities["async_safe"]

    async def many() -> None:
        await asyncio.gather(*(store.get_latest_resources() for _ in range(5)))

    threads = [threading.Thread(target=asyncio.run, args=(many(),)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert inner.calls == 15 and inner.most == 1


def test_threaded_store_serialises_the_wrapped_clients_otlp_export() -> None:
    class ExportingStore(LightningStore):
        def __init__(self) -> None:
            self.active = 0
            self.most = 0
            self.bodies: List[bytes] = []

        async def _busy(self) -> None:
            self.active += 1
            self.most = max(self.most, self.active)
            await asyncio.sleep(0.01)
            self.active -= 1

        async def export_otlp(self, body: bytes, content_type: str = "application/x-protobuf") -> bytes:
            await self._busy()
            self.bodies.append(body)
            return b"ok:" + content_type.encode()

        async def add_many_spans(self, spans: Any) -> Any:
            await self._busy()
            return []

    inner = ExportingStore()
    store = agl.LightningStoreThreaded(inner)
    export = getattr(store, "export_otlp", None)
    assert callable(export)

    async def both() -> List[Any]:
        calls = [export(b"%d" % i, content_type="application/json") for i in range(3)]
        return list(await asyncio.gather(*calls, store.add_many_spans([])))

    assert asyncio.run(both())[:3] == [b"ok:application/json"] * 3
    assert sorted(inner.bodies) == [b"0", b"1", b"2"] and inner.most == 1
    # a wrapped store without the export has none through the facade either (writers then post OTLP themselves)
    assert getattr(agl.LightningStoreThreaded(LightningStore()), "export_otlp", None) is None


def test_threaded_store_over_the_memory_store() -> None:
    from agentlightning.store.memory import InMemoryLightningStore

    async def flow() -> None:
        store = agl.LightningStoreThreaded(InMemoryLightningStore())
        rollout = await store.enqueue_rollout(input={"q": 1})
        claimed = await store.dequeue_rollout()
        assert claimed is not None and claimed.rollout_id == rollout.rollout_id
        await store.update_attempt(rollout.rollout_id, claimed.attempt.attempt_id, status="succeeded")
        done = await store.wait_for_rollouts(rollout_ids=[rollout.rollout_id], timeout=5)
        assert [r.status for r in done] == ["succeeded"]
        await store.close()

    asyncio.run(flow())


def test_estimate_model_size_counts_nested_values() -> None:
    from agentlightning.store.memory import estimate_model_size

    small = agl.Rollout(rollout_id="r", input={"a": 1}, start_time=1.0)
    large = agl.Rollout(rollout_id="r", input={"a": "x" * 10_000}, start_time=1.0)
    assert estimate_model_size(large) > estimate_model_size(small) + 9_000


def test_collection_stand_ins_say_what_replaces_them() -> None:
    from agentlightning.store.collection import ListBasedCollection

    with pytest.raises(NotImplementedError, match="StorageBackend"):
        ListBasedCollection()


# -------------------------------------------------------------------------------------------- emitters, tracing


@pytest.mark.parametrize("name", ["LightningSpanExporter", "StreamConversionMiddleware", "RolloutAttemptMiddleware"])
def test_llm_proxy_internals_import_and_say_what_replaces_them(name: str) -> None:
    import agentlightning.llm_proxy as module

    assert module.__all__ == ["LLMProxy"]  # upstream's public name; the rest are its internals
    with pytest.raises(NotImplementedError, match=f"{name} is upstream v0.3's LiteLLM-proxy internal.*own gateway"):
        getattr(module, name)(object())
    entry: module.ModelConfig = {"model_name": "m", "litellm_params": {"model": "hosted_vllm/m"}}
    assert set(entry) == set(module.ModelConfig.__annotations__)


def test_emitters_use_their_module_get_active_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    import agentlightning.emitter.annotation as annotation_module
    import agentlightning.emitter.exception as exception_module

    recorded: List[str] = []

    class Recording(agl.DummyTracer):
        def create_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
            recorded.append(name)
            return super().create_span(name, *args, **kwargs)

    tracer = Recording()
    monkeypatch.setattr(annotation_module, "get_active_tracer", lambda: tracer)
    monkeypatch.setattr(exception_module, "get_active_tracer", lambda: tracer)
    agl.emit_annotation({"k": "v"})
    agl.emit_exception(ValueError("x"))
    assert recorded == ["agentlightning.annotation", "agentlightning.exception"]


def test_operation_context_takes_upstreams_name_and_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    import agentlightning.emitter.annotation as annotation_module
    from agentlightning.emitter.annotation import OperationContext

    names: List[str] = []
    attributes: List[Dict[str, Any]] = []

    class Recording(agl.DummyTracer):
        def operation_context(self, name: str, attributes_: Any = None, *args: Any, **kwargs: Any) -> Any:
            names.append(name)
            attributes.append(dict(kwargs.get("attributes") or attributes_ or {}))
            return super().operation_context(name, *args, **kwargs)

    monkeypatch.setattr(annotation_module, "get_active_tracer", Recording)
    with OperationContext("custom-span", {"meta": {"foo": 1}, "count": 2}):
        pass
    with OperationContext({"team": "a"}, False):  # our form: attributes, propagate
        pass
    assert names == ["custom-span"]
    assert attributes == [{"meta.foo": 1, "count": 2}]


def test_get_tracer_provider_and_isolated_tracer() -> None:
    from agentlightning.utils.otel import get_span_processors, get_tracer
    from opentelemetry import trace as trace_api
    from opentelemetry.sdk.trace import TracerProvider

    if getattr(trace_api, "_TRACER_PROVIDER", None) is None:
        trace_api.set_tracer_provider(TracerProvider())
    provider = agl.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    assert isinstance(get_span_processors(provider), list)
    isolated = get_tracer(use_active_span_processor=False)
    with isolated.start_as_current_span("not exported") as span:
        assert span.is_recording()


def test_instrument_all_instruments_openai_and_watches_the_other_libraries() -> None:
    """``instrument_all`` patches the libraries already imported and the others when they are first imported, so a
    library that is not installed is simply never patched (no warning, unlike upstream's eager version)."""
    from agentlightning.instrumentation import is_openai_instrumented

    pytest.importorskip("openai")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        agl.instrument_all()
    try:
        assert is_openai_instrumented()
    finally:
        agl.uninstrument_all()
    assert not is_openai_instrumented()


# ------------------------------------------------------------------------------------------------- arguments


def test_build_component_takes_upstreams_registry_and_error_formats() -> None:
    from agentlightning.trainer.init_utils import build_component

    built = build_component(
        "tracer", expected_type=agl.Tracer, spec_name="tracer", registry={"tracer": "agentlightning.DummyTracer"}
    )
    assert isinstance(built, agl.DummyTracer)
    with pytest.raises(TypeError, match="got <class 'int'> not Tracer"):
        build_component(lambda: 1, expected_type=agl.Tracer, spec_name="tracer",
                        type_error_fmt="got {type_name} not {expected_type}")  # fmt: skip
    with pytest.raises(ValueError, match="bad <class 'float'> for Tracer"):
        build_component(1.5, expected_type=agl.Tracer, spec_name="tracer",
                        invalid_spec_error_fmt="bad {actual_type} for {expected_type}")  # fmt: skip


def test_baseline_logs_spans_in_upstreams_format(caplog: pytest.LogCaptureFixture) -> None:
    from agentlightning.algorithm.fast import Baseline

    span = agl.Span.from_core_fields(
        agl.SpanCoreFields(
            name="llm", status=agl.TraceStatus(status_code="OK"), attributes={"k": 1}, start_time=10.0, end_time=11.5
        ),
        rollout_id="r1",
        attempt_id="a1",
        sequence_id=3,
    )
    with caplog.at_level(logging.INFO, logger="agentlightning.algorithm.fast"):
        Baseline(span_verbosity="key_values")._log_spans("r1", [span])
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith(f"[Rollout r1 | Attempt a1 | Span {span.span_id}] #3 (llm) From ")
    assert message.endswith(", 1.50 seconds. Attributes: {'k': 1}")


def test_agentops_tracer_at_upstreams_tracer_package_path() -> None:
    import agentlightning.tracer as tracer
    from agentlightning._reexport import PluginNotInstalledError

    try:
        from agentlightning_agentops.tracer import AgentOpsTracer
    except ImportError:
        with pytest.raises(PluginNotInstalledError, match="pip install agentlightning-agentops"):
            tracer.AgentOpsTracer  # noqa: B018
    else:
        assert tracer.AgentOpsTracer is AgentOpsTracer
