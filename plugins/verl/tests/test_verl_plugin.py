"""Plugin surface: registration, `agl verl check`, the missing-extra error, and a light import."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import agentlightning_verl.hooks
import pytest
from agentlightning.cli.app import main
from agentlightning_verl import VERL, MissingGPUExtraError, gpu_status

MODEL = {"actor_rollout_ref": {"model": {"path": "Qwen/Qwen2.5-0.5B-Instruct"}}}


def _gpu_installed() -> bool:
    return all(gpu_status().values())


@pytest.fixture
def verl_plugin(plugin_manager: Any) -> Any:
    plugin_manager.register(agentlightning_verl.hooks, "verl")
    return plugin_manager


def test_registers_algorithm_export_and_command(verl_plugin: Any) -> None:
    registration = verl_plugin.get("algorithms", "verl")
    assert registration.load() is VERL
    if not _gpu_installed():
        assert "agentlightning-verl[gpu]" in registration.description
        assert "verl" in registration.description.split("Missing GPU extra (")[1]
    assert "verl" in verl_plugin.registry("commands")
    import agentlightning as agl

    assert agl.VERL is VERL


def test_agl_verl_check_reports_missing_modules(verl_plugin: Any, capsys: Any, tmp_path: Any) -> None:
    with pytest.raises(SystemExit) as code:
        main(["verl", "check"])
    out, err = capsys.readouterr()
    for module in ("verl", "vllm", "ray", "torch", "omegaconf"):
        assert module in out
    if _gpu_installed():
        assert code.value.code == 0
    else:
        assert code.value.code == 1 and "pip install 'agentlightning-verl[gpu]'" in err
        assert "MISSING" in out


def test_agl_verl_check_validates_a_config(verl_plugin: Any, capsys: Any, tmp_path: Any) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(MODEL))
    with pytest.raises(SystemExit):
        main(["verl", "check", "--config", str(path), "data.train_batch_size=4"])
    assert "config: ok" in capsys.readouterr().out
    with pytest.raises(SystemExit) as code:
        main(["verl", "check", "--config", str(path), "actor_rollout_ref.rollout.n=0"])
    assert code.value.code == 2
    assert "config: actor_rollout_ref.rollout.n: must be an int >= 1, got 0" in capsys.readouterr().err


@pytest.mark.skipif(_gpu_installed(), reason="the GPU extra is installed here")
def test_run_without_the_gpu_extra_names_the_extra() -> None:
    import anyio

    algorithm = VERL(MODEL)
    with pytest.raises(MissingGPUExtraError, match=r"pip install 'agentlightning-verl\[gpu\]'") as info:
        anyio.run(algorithm.run, [{"question": "1 + 1"}])
    assert "VERL(...).run" in str(info.value) and "verl" in str(info.value)


def test_bad_config_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="actor_rollout_ref.model.path"):
        VERL({})
    with pytest.raises(TypeError, match="daemon_cls"):
        VERL(MODEL, daemon_cls=object)


def test_a_backend_lacking_methods_is_rejected() -> None:
    import anyio

    class Half:
        def __init__(self, config: Any) -> None:
            self.model_name, self.pad_token_id = "m", 0

        def start(self) -> list:
            return ["127.0.0.1:9"]

    with pytest.raises(TypeError, match="lacks load_checkpoint, wake_up, sleep, train_step"):
        anyio.run(VERL(MODEL, trainer_cls=Half).run, [1])


def test_importing_the_plugin_is_light() -> None:
    code = (
        "import sys, agentlightning_verl, agentlightning_verl.hooks; "
        "print([m for m in ('torch', 'ray', 'verl', 'vllm', 'numpy', 'omegaconf', 'openai') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
