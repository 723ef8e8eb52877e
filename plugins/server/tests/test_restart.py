"""Crash test: the server (SQLite backend, own process) is SIGKILLed and restarted while runners write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from agentlightning_server import LightningStoreClient, LightningStoreServer
from agentlightning_server.serve import free_port

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).with_name("restart_runner.py")


def _lines(path: Path) -> list:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_sigkill_restart_loses_no_acknowledged_write(tmp_path: Path) -> None:
    pytest.importorskip("agentlightning_sqlite")
    url = f"sqlite:///{tmp_path / 'run.db'}"
    port = free_port()
    server = LightningStoreServer(url, port=port, launch_mode="subprocess").start()
    outs = [tmp_path / f"runner-{n}.jsonl" for n in range(2)]
    runners = [
        subprocess.Popen([sys.executable, str(RUNNER), server.endpoint, f"r{n}", "150", str(out)])
        for n, out in enumerate(outs)
    ]
    try:
        deadline = time.monotonic() + 60
        while min(len(_lines(out)) for out in outs) < 5:
            assert time.monotonic() < deadline, "runners made no progress"
            assert all(r.poll() is None for r in runners), "a runner ended early"
            time.sleep(0.05)
        assert server._process is not None
        os.kill(server._process.pid, signal.SIGKILL)
        server._process.wait(10)
        acked_at_kill = sum(len(_lines(out)) for out in outs)
        time.sleep(0.3)
        server = LightningStoreServer(url, port=port, launch_mode="subprocess").start()
        for runner in runners:
            assert runner.wait(120) == 0
    except BaseException:
        server.stop()  # a failed test leaves no server behind
        raise
    finally:
        for runner in runners:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
    records = [record for out in outs for record in _lines(out)]

    async def verify() -> None:
        client = LightningStoreClient(server.endpoint)
        try:
            for record in records:
                rollout = await client.get_rollout_by_id(record["rollout_id"])
                assert rollout is not None and rollout.status == "succeeded", record
                spans = await client.query_spans(record["rollout_id"])
                assert set(record["span_ids"]) <= {s.span_id for s in spans}, record
        finally:
            await client.close()

    try:
        assert len(records) > acked_at_kill, "runners did not carry on after the restart"
        anyio.run(verify)
    finally:
        server.stop()
