"""Worker heartbeats: system statistics for ``store.update_worker`` and liveness of the attempts in progress."""

from __future__ import annotations

import logging
import os
import platform
import random
import shutil
import time
from typing import Any, Dict

__all__ = ["system_snapshot", "jittered"]

logger = logging.getLogger(__name__)

_GB = 1024**3


def _psutil() -> Any:
    try:
        import psutil
    except ImportError:
        return None
    return psutil


def system_snapshot(include_gpu: bool = False) -> Dict[str, Any]:
    """CPU, memory and disk figures of this machine (richer with ``psutil`` installed; optional).

    Keys follow upstream: cpu_name, cpu_cores, cpu_threads, cpu_usage_pct, mem_used_gb, mem_total_gb, mem_pct,
    disk_used_gb, disk_total_gb, disk_pct, plus pid and hostname; ``gpus`` when asked for and nvidia-ml is present.
    """
    snap: Dict[str, Any] = {
        "hostname": platform.node(),
        "pid": os.getpid(),
        "cpu_name": platform.processor() or platform.machine(),
        "cpu_threads": os.cpu_count(),
    }
    try:
        disk = shutil.disk_usage(os.getcwd())
        snap.update(
            disk_used_gb=round(disk.used / _GB, 2),
            disk_total_gb=round(disk.total / _GB, 2),
            disk_pct=round(100.0 * disk.used / disk.total, 1) if disk.total else None,
        )
    except OSError:
        pass
    psutil = _psutil()
    if psutil is not None:
        mem = psutil.virtual_memory()
        snap.update(
            cpu_cores=psutil.cpu_count(logical=False),
            cpu_usage_pct=psutil.cpu_percent(interval=None),  # non-blocking: since the previous call
            mem_used_gb=round(mem.used / _GB, 2),
            mem_total_gb=round(mem.total / _GB, 2),
            mem_pct=mem.percent,
        )
    elif hasattr(os, "getloadavg"):
        snap["load_avg_1m"] = round(os.getloadavg()[0], 2)
    if include_gpu:
        snap["gpus"] = _gpus()
    return snap


def _gpus() -> Any:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            out.append({"index": i, "mem_used_gb": round(mem.used / _GB, 2), "util_pct": util.gpu})
        return out
    except Exception:  # pragma: no cover - depends on the machine
        logger.debug("GPU statistics unavailable", exc_info=True)
        return []


def jittered(interval: float, jitter: float) -> float:
    """``interval`` moved by up to ``±jitter`` seconds, never below 0.01 s."""
    return max(0.01, interval + random.uniform(-jitter, jitter)) if jitter > 0 else max(0.01, interval)


def now() -> float:
    return time.time()
