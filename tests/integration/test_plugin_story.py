"""The "write a custom plugin" story, end to end, in a fresh virtual environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _uv() -> list[str]:
    uv = shutil.which("uv")
    if uv:
        return [uv]
    pytest.importorskip("uv")
    return [sys.executable, "-m", "uv"]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with only core and the example plugin installed (not editable: as a user would)."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([*_uv(), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    plugin = tmp_path_factory.mktemp("src") / "example-plugin"
    shutil.copytree(
        ROOT / "contrib" / "example-plugin", plugin, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    subprocess.run(
        [*_uv(), "pip", "install", "-q", "--python", str(python), str(ROOT / "core"), "-e", str(plugin)],
        check=True,
    )
    return venv


def agl(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "agl"), *args], check=False, capture_output=True, text=True, timeout=60)


def test_agl_plugins_lists_the_example_plugin(fresh_venv: Path) -> None:
    result = agl(fresh_venv, "plugins")
    assert result.returncode == 0, result.stderr
    assert "example" in result.stdout and "agentlightning-example 0.1.0" in result.stdout
    assert "example-stats" in result.stdout and "counting" in result.stdout
    assert result.stderr == ""


def test_a_broken_plugin_prints_one_clear_line_and_the_rest_still_list(fresh_venv: Path) -> None:
    hooks = next((fresh_venv.parent.parent).glob("src*/example-plugin/src/agentlightning_example/hooks.py"))
    original = hooks.read_text()
    hooks.write_text(original + "\nraise ImportError('the example plugin is broken on purpose')\n")
    try:
        result = agl(fresh_venv, "plugins")
        assert result.returncode == 0
        failure_lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert failure_lines == [
            "FAILED plugin 'example' (agentlightning-example 0.1.0) failed to import: "
            "ImportError: the example plugin is broken on purpose"
        ]
        assert "agentlightning-core" in result.stdout
        assert agl(fresh_venv, "plugins", "--strict").returncode == 1
    finally:
        hooks.write_text(original)


def test_import_agentlightning_is_fast_and_light(fresh_venv: Path) -> None:
    python = str(fresh_venv / "bin" / "python")
    code = "import agentlightning, sys; print(len([m for m in sys.modules if m.startswith('agentlightning_')]))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"
