"""The end-of-run report: a reward-curve PNG (matplotlib when installed, else a tiny pure-Python PNG writer) and a
JSON summary."""

from __future__ import annotations

import itertools
import json
import struct
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["write_png", "plot_curves", "write_summary"]

Color = Tuple[int, int, int]
TRAIN: Color = (31, 119, 180)
VAL: Color = (255, 127, 14)


def write_png(path: str, pixels: Sequence[bytearray], width: int, height: int) -> None:
    """Write 8-bit RGB rows (``width * 3`` bytes each) as a PNG file."""
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
        )


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.rows = [bytearray(b"\xff" * (width * 3)) for _ in range(height)]

    def dot(self, x: int, y: int, color: Color, size: int = 1) -> None:
        for dx in range(-size + 1, size):
            for dy in range(-size + 1, size):
                px, py = x + dx, y + dy
                if 0 <= px < self.width and 0 <= py < self.height:
                    self.rows[py][px * 3 : px * 3 + 3] = bytes(color)

    def line(self, a: Tuple[int, int], b: Tuple[int, int], color: Color, size: int = 1) -> None:
        (x0, y0), (x1, y1) = a, b
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            self.dot(round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps), color, size)


def _fallback_plot(path: str, series: Dict[str, List[Tuple[float, float]]], x_max: float) -> None:
    width, height, margin = 640, 400, 40
    canvas = _Canvas(width, height)
    grey: Color = (200, 200, 200)
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):  # reward grid lines at 0, .25, .5, .75, 1
        y = round(height - margin - frac * (height - 2 * margin))
        canvas.line((margin, y), (width - margin, y), grey)
    canvas.line((margin, margin), (margin, height - margin), (0, 0, 0))
    canvas.line((margin, height - margin), (width - margin, height - margin), (0, 0, 0))

    def to_px(x: float, y: float) -> Tuple[int, int]:
        px = margin + (x / x_max if x_max else 0.0) * (width - 2 * margin)
        py = height - margin - max(0.0, min(1.0, y)) * (height - 2 * margin)
        return round(px), round(py)

    for name, color in (("train", TRAIN), ("val", VAL)):
        points = [to_px(x, y) for x, y in series.get(name, [])]
        for a, b in itertools.pairwise(points):
            canvas.line(a, b, color, 2)
        for p in points:
            canvas.dot(p[0], p[1], color, 3)
    write_png(path, canvas.rows, width, height)


def plot_curves(path: str, history: Sequence[Dict[str, Any]]) -> str:
    """Mean reward against elapsed seconds (train: blue, validation: orange). Returns how it was drawn."""
    series: Dict[str, List[Tuple[float, float]]] = {"train": [], "val": []}
    for item in history:
        series.setdefault(item["kind"], []).append((float(item["elapsed"]), float(item["mean_reward"])))
    x_max = max((x for pts in series.values() for x, _ in pts), default=1.0) or 1.0
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _fallback_plot(path, series, x_max)
        return "pure-Python PNG (install matplotlib for labelled axes): x = seconds, y = mean reward 0..1"
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, color in (("train", TRAIN), ("val", VAL)):
        pts = series.get(name, [])
        if pts:
            ax.plot(
                [p[0] for p in pts], [p[1] for p in pts], "-o", markersize=3, label=name, color=[c / 255 for c in color]
            )
    ax.set_xlabel("seconds")
    ax.set_ylabel("mean reward")
    ax.set_ylim(0, 1.05)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return "matplotlib"


def write_summary(path: str, summary: Dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")


def first_and_last(history: Sequence[Dict[str, Any]], kind: str) -> Tuple[Optional[float], Optional[float]]:
    values = [h["mean_reward"] for h in history if h["kind"] == kind]
    return (values[0], values[-1]) if values else (None, None)
