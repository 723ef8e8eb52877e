"""Tests that need PyTorch are left out when it is not installed (install it with ``torch==2.13.0``)."""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy", category=UserWarning)

try:
    import torch
except ImportError:  # the tokenizer, task, registration and command tests still run
    torch = None  # type: ignore[assignment]
    collect_ignore = [
        "test_model.py",
        "test_grpo_math.py",
        "test_server.py",
        "test_quickstart.py",
        "test_sft.py",
        "test_optim.py",
        "test_batcher.py",
    ]
else:
    torch.set_num_threads(1)
