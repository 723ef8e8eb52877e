"""Micro-benchmark of the span hot paths: memory packing, SQLite JSON codec, the converter, builders and evolve.

Run: ``python tests/benchmarks/span_codec.py [repeats]``. Prints microseconds per call (the best of ``repeats``
batches), for a typical span with 20 attributes. Compare figures from one run on one machine only.
"""

from __future__ import annotations

import sys
import timeit
from typing import Any, Callable, Dict

import attrs
from agentlightning.store import transitions as tr
from agentlightning.types import from_dict, to_dict
from agentlightning.types.core import Rollout
from agentlightning.types.tracer import Span
from agentlightning_memory.packing import pack_span, unpack_span
from agentlightning_sqlite import codec


def typical_span() -> Span:
    attributes: Dict[str, Any] = {f"gen_ai.attr.{i}": f"value-{i}" for i in range(12)}
    attributes.update({f"gen_ai.usage.{i}": i * 7 for i in range(4)})
    attributes.update({"gen_ai.temperature": 0.7, "stream": False, "ids": [1, 2, 3], "agentlightning.reward": 1.0})
    return Span.from_attributes(
        attributes=attributes,
        rollout_id="ro-1234567890ab",
        attempt_id="at-1234567890ab",
        sequence_id=42,
        name="openai.chat.completion",
        trace_id="a" * 32,
        span_id="b" * 16,
        parent_id="c" * 16,
        start_time=1_700_000_000.25,
        end_time=1_700_000_001.5,
    )


def cases() -> Dict[str, Callable[[], Any]]:
    span = typical_span()
    packed = pack_span(span)
    text = codec.encode(span)
    data = to_dict(span)
    rollout = Rollout(rollout_id="ro-1", input={"q": 1}, start_time=1.0)
    attrs_span = dict(span.attributes)
    return {
        "memory pack_span": lambda: pack_span(span),
        "memory unpack_span": lambda: unpack_span(packed),
        "sqlite encode(span)": lambda: codec.encode(span),
        "sqlite decode(span)": lambda: codec.decode(text, Span),
        "converter to_dict(span)": lambda: to_dict(span),
        "converter from_dict(span)": lambda: from_dict(data, Span),
        "Span.from_attributes": lambda: Span.from_attributes(
            attributes=attrs_span, rollout_id="r", attempt_id="a", sequence_id=1, trace_id="a" * 32, span_id="b" * 16
        ),
        "store evolve(span, sequence_id)": lambda: tr.evolve(span, sequence_id=43),
        "attrs.evolve(span, sequence_id)": lambda: attrs.evolve(span, sequence_id=43),
        "store evolve(rollout, status)": lambda: tr.evolve(rollout, status="running"),
        "attrs.evolve(rollout, status)": lambda: attrs.evolve(rollout, status="running"),
    }


def main(repeats: int = 400, number: int = 100) -> None:
    """Best of ``repeats`` batches of ``number`` calls, the cases interleaved: short batches, so that on a loaded
    machine some of them run undisturbed."""
    timers = {name: timeit.Timer(fn) for name, fn in cases().items()}
    best = dict.fromkeys(timers, float("inf"))
    for _ in range(repeats):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(number) / number)
    for name, seconds in best.items():
        print(f"{name:36s} {seconds * 1e6:8.2f} us")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400)
