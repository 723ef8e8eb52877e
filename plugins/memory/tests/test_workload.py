"""The shared benchmark workload (tests/benchmarks/store_workload.py) runs end to end on a small size."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "tests" / "benchmarks" / "store_workload.py"


@pytest.mark.parametrize("mode", ["many", "single", "runner"])
def test_workload_reports_figures(mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("store_workload", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--n", "40", "--spans", "3", "--workers", "3", "--span-mode", mode, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["spans_queried"] == 120
    assert result["rollouts_per_s"] > 0 and result["peak_rss_mb"] > 0
    assert {"dequeue_p50_ms", "dequeue_p99_ms", "add_span_p50_ms", "add_span_p99_ms"} <= set(result)
