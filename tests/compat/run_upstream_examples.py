"""Run upstream Agent Lightning v0.3's examples, unchanged, against our packages and a local OpenAI-compatible server.

    python tests/compat/run_upstream_examples.py --upstream /path/to/agent-lightning-v0.3.0 [--only NAME ...]

``--upstream`` is a checkout (or extracted sdist) of upstream's repository at tag v0.3.0; its ``examples/`` are copied
to a temporary directory at run time (nothing of upstream's is kept in this repository). Each example that needs no
GPU and no hosted service runs with a time limit, with ``OPENAI_BASE_URL`` / ``OPENAI_API_BASE`` pointing at
:class:`~agentlightning.testing.openai_server.OpenAITestServer` (a scripted model that answers each example's
calls: tool calls for the room selector, JSON for structured judges, a number for score judges, revised templates
for APO). Prints one line per example, ``ok`` or ``FAILED`` with the reason, and exits 1 if any failed.
``--json FILE`` writes the results as JSON. Examples listen on upstream's fixed ports (4747, 9997, 43886/7, 45993),
so they run one after another.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import attrs

DEFAULT_TIMEOUT = 300.0


@attrs.define
class Example:
    """One run: ``command`` in a copy of ``examples/<folder>``; ``background`` commands start first (each waiting
    for its port, if given) and are stopped after; ``needs`` are modules the example imports."""

    name: str
    folder: str
    command: List[str]
    background: List[List[str]] = attrs.field(factory=list)
    wait_ports: List[Optional[int]] = attrs.field(factory=list)
    needs: List[str] = attrs.field(factory=list)
    timeout: float = DEFAULT_TIMEOUT
    expect_background_exit: bool = False
    """The background commands finish by themselves (their exit code counts)."""


PY = "{python}"
AGL = "{agl}"

EXAMPLES: List[Example] = [
    Example("apo/room_selector", "apo", [PY, "room_selector.py"], needs=["rich", "pydantic"]),
    Example("apo/room_selector_apo", "apo", [PY, "room_selector_apo.py"], needs=["rich", "pydantic"], timeout=900.0),
    Example("apo/apo_custom_algorithm_trainer", "apo", [PY, "apo_custom_algorithm_trainer.py"], needs=["rich"]),
    Example(
        "apo/apo_custom_algorithm (agl store + algo + runner)",
        "apo",
        [PY, "apo_custom_algorithm.py", "algo"],
        background=[[AGL, "store"], [PY, "apo_custom_algorithm.py", "runner"]],
        wait_ports=[4747, None],
        needs=["rich"],
    ),  # fmt: skip
    Example("apo/apo_debug --mode runner", "apo", [PY, "apo_debug.py", "--mode", "runner"], needs=["rich"]),
    Example("apo/apo_debug --mode hook", "apo", [PY, "apo_debug.py", "--mode", "hook"], needs=["rich"]),
    Example("apo/apo_debug --mode trainer", "apo", [PY, "apo_debug.py", "--mode", "trainer"], needs=["rich"]),
    Example(
        "apo/legacy_apo_server + legacy_apo_client",
        "apo",
        [PY, "legacy_apo_server.py"],
        background=[[PY, "legacy_apo_client.py"]],
        wait_ports=[None],
        needs=["dotenv"],
        expect_background_exit=True,
    ),  # fmt: skip
    Example("minimal/write_traces otel", "minimal", [PY, "write_traces.py", "otel"], needs=["rich"]),
    Example("minimal/write_traces operation", "minimal", [PY, "write_traces.py", "operation"], needs=["rich"]),
    Example("minimal/write_traces agentops", "minimal", [PY, "write_traces.py", "agentops"], needs=["rich"]),
    Example(
        "minimal/write_traces otel --use-client",
        "minimal",
        [PY, "write_traces.py", "otel", "--use-client"],
        background=[[AGL, "store", "--port", "45993"]],
        wait_ports=[45993],
        needs=["rich"],
    ),  # fmt: skip
    Example(
        "minimal/write_traces operation --use-client",
        "minimal",
        [PY, "write_traces.py", "operation", "--use-client"],
        background=[[AGL, "store", "--port", "45993"]],
        wait_ports=[45993],
        needs=["rich"],
    ),  # fmt: skip
    Example(
        "minimal/llm_proxy openai + test",
        "minimal",
        [PY, "llm_proxy.py", "test", "gpt-4.1-mini"],
        background=[[PY, "llm_proxy.py", "openai", "gpt-4.1-mini"]],
        wait_ports=[43886],
        needs=["rich", "aiohttp", "portpicker", "httpx"],
    ),  # fmt: skip
    Example(
        "minimal/write_metrics",
        "minimal",
        [PY, "write_metrics.py", "--duration", "2", "--prom-host", "127.0.0.1", "--prom-port", "{free_port}"],
        needs=["prometheus_client"],
    ),  # fmt: skip
]


# -- the scripted model ------------------------------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return ""


_EDIT = re.compile(r"Prompt template:\s*\n\n(?P<template>.*?)\n\nCritique:", re.S)


def example_model(request: Dict[str, Any]) -> Any:
    """What the examples' LLM calls need, decided from the request alone (deterministic)."""
    from agentlightning.testing.openai_server import Reply, ToolCall

    messages = request.get("messages") or []
    last = messages[-1] if messages else {}
    user = _text(last.get("content")) if last else _text(request.get("prompt"))
    everything = "\n".join(_text(m.get("content")) for m in messages)
    tools = request.get("tools") or []
    if tools and last.get("role") != "tool":  # room selector: look the rooms up first
        name = tools[0].get("function", {}).get("name", "tool")
        return Reply(tool_calls=[ToolCall(name, {"date": "2025-10-13", "time": "10:00", "duration_min": 60})])
    if last.get("role") == "tool":
        return "final_choice: Orion\nreason: free, enough seats, closest."
    if request.get("response_format"):  # structured judge (room selector's grader)
        return json.dumps({"reason": "matches the expected room" if "Orion" in everything else "wrong room",
                           "score": 1.0 if "Orion" in everything else 0.25})  # fmt: skip
    if "Return only a number" in everything:  # score judge (apo_custom_algorithm)
        return "0.8" if "helpful" in everything else "0.6"
    edit = _EDIT.search(everything)
    if edit:  # APO: apply a critique to the template, keeping its placeholders
        return edit.group("template").rstrip() + "\nCheck every hard constraint before you answer."
    if "prompt template" in everything.lower() and ("critique" in everything.lower() or "experiments" in everything):
        return "- State the hard constraints explicitly.\n- Ask for the final choice in a fixed format."
    if "name" in user.lower():
        return "I am ChatGPT, a local test model."
    return "ChatGPT (local test model) says: " + user[:200]


# -- running -----------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[str], grace: float = 10.0) -> None:
    """Stop ``process`` and its process group (SIGINT, then SIGTERM, then SIGKILL)."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group (e.g. worker processes)
    except (ProcessLookupError, PermissionError):
        pass


def _reason(output: str) -> str:
    """The most telling line of a failed run's output: the last exception line, else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^([\w.]+(Error|Exception|Exit|Interrupt)|AssertionError|ModuleNotFoundError)\b", line):
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def _missing(needs: Sequence[str], python: str) -> List[str]:
    code = "import importlib.util,sys; print(','.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    out = subprocess.run([python, "-c", code, *needs], capture_output=True, text=True, check=False).stdout.strip()
    return [m for m in out.split(",") if m]


def run_example(example: Example, source: Path, workdir: Path, env: Dict[str, str], python: str) -> Dict[str, Any]:
    started = time.monotonic()
    missing = _missing(example.needs, python)
    if missing:
        return {"name": example.name, "ok": False, "reason": f"missing module(s) {', '.join(missing)}", "seconds": 0}
    folder = workdir / example.name.replace("/", "_").replace(" ", "_")
    shutil.copytree(source / example.folder, folder)
    agl = str(Path(python).with_name("agl"))
    values = {"python": python, "agl": agl if Path(agl).exists() else "agl", "free_port": str(_free_port())}

    def expand(argv: List[str]) -> List[str]:
        return [arg.format(**values) for arg in argv]

    def spawn(argv: List[str], log: Optional[Path] = None) -> subprocess.Popen[str]:
        out: Any = subprocess.PIPE if log is None else log.open("w")
        try:
            return subprocess.Popen(
                expand(argv), cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                start_new_session=True,
            )  # fmt: skip
        finally:
            if log is not None:
                out.close()

    def background_output() -> str:
        return "".join(
            f"\n--- {' '.join(argv)} ---\n" + (folder / f"background-{i}.log").read_text(errors="replace")[-3000:]
            for i, argv in enumerate(example.background)
            if (folder / f"background-{i}.log").exists()
        )

    background: List[subprocess.Popen[str]] = []
    try:
        ports = example.wait_ports or [None] * len(example.background)
        for i, (argv, port) in enumerate(zip(example.background, ports)):
            process = spawn(argv, folder / f"background-{i}.log")
            background.append(process)
            deadline = time.monotonic() + 60
            while port is not None and not _port_open(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    out = background_output()
                    reason = f"{' '.join(argv)} did not listen on {port}: {_reason(out)}"
                    seconds = round(time.monotonic() - started, 1)
                    return {"name": example.name, "ok": False, "seconds": seconds, "reason": reason, "output": out}
                time.sleep(0.2)
        main = spawn(example.command)
        try:
            out, _ = main.communicate(timeout=example.timeout)
        except subprocess.TimeoutExpired:
            _stop(main)
            out = main.communicate()[0]
            return {"name": example.name, "ok": False, "seconds": round(time.monotonic() - started, 1),
                    "reason": f"timed out after {example.timeout:.0f} s: {_reason(out)}",
                    "output": out[-4000:] + background_output()}  # fmt: skip
        if main.returncode != 0:
            return {"name": example.name, "ok": False, "seconds": round(time.monotonic() - started, 1),
                    "reason": f"exit code {main.returncode}: {_reason(out)}",
                    "output": out[-4000:] + background_output()}  # fmt: skip
        if example.expect_background_exit:
            for process in background:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    _stop(process)
                if process.returncode != 0:
                    bout = background_output()
                    return {"name": example.name, "ok": False, "seconds": round(time.monotonic() - started, 1),
                            "reason": f"{' '.join(process.args[1:])} exit code {process.returncode}: {_reason(bout)}",
                            "output": bout}  # fmt: skip
        return {"name": example.name, "ok": True, "reason": "", "seconds": round(time.monotonic() - started, 1)}
    finally:
        for process in background:
            _stop(process)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, help="upstream v0.3.0 checkout (holds examples/)")
    parser.add_argument("--only", nargs="*", default=None, help="run only examples whose name contains one of these")
    parser.add_argument("--python", default=sys.executable, help="interpreter with our packages installed")
    parser.add_argument("--json", default=None, help="write the results to this file as JSON")
    parser.add_argument("--list", action="store_true", help="list the examples and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the output of failed examples")
    args = parser.parse_args(argv)
    if args.list:
        for example in EXAMPLES:
            print(example.name)
        return 0
    source = Path(args.upstream).resolve() / "examples"
    if not source.is_dir():
        print(f"no examples/ under {args.upstream}", file=sys.stderr)
        return 2
    selected = [e for e in EXAMPLES if not args.only or any(o in e.name for o in args.only)]
    from agentlightning.testing.openai_server import OpenAITestServer

    results: List[Dict[str, Any]] = []
    with OpenAITestServer(example_model) as llm, tempfile.TemporaryDirectory(prefix="agl-upstream-examples-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGL_", "OPENAI_"))}
        env.update(
            OPENAI_API_KEY="test-key", OPENAI_BASE_URL=llm.base_url, OPENAI_API_BASE=llm.base_url,
            AGENTOPS_API_KEY=env.get("AGENTOPS_API_KEY", ""), LITELLM_LOCAL_MODEL_COST_MAP="True",
            PYTHONUNBUFFERED="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
        )  # fmt: skip
        for example in selected:
            result = run_example(example, source, Path(tmp), env, args.python)
            results.append(result)
            status = "ok" if result["ok"] else "FAILED"
            print(f"{status:6} {result['seconds']:6.1f}s  {example.name}  {result['reason']}", flush=True)
            if args.verbose and not result["ok"] and result.get("output"):
                print("    | " + "\n    | ".join(str(result["output"]).splitlines()[-40:]), flush=True)
    passed = sum(1 for r in results if r["ok"])
    print(f"{passed}/{len(results)} examples ran unchanged")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
