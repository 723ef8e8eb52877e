"""agentlightning-verl: the ``VERL`` algorithm (distributed PPO/GRPO on verl, Ray and vLLM).

Importing this package is light: verl, vLLM, Ray and torch are imported only when :meth:`VERL.run` starts verl.
"""

from __future__ import annotations

from .algorithm import VERL
from .backend import TrainerBackend
from .config import DEFAULTS, ConfigError, compose_config
from .deps import MissingGPUExtraError, gpu_status

__all__ = ["VERL", "TrainerBackend", "DEFAULTS", "ConfigError", "compose_config", "MissingGPUExtraError", "gpu_status"]
