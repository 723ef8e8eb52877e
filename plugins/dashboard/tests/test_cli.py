"""``agl dashboard --store URL``: a read-only local server with the dashboard, for a file store or an http store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Optional

import httpx
import pytest
from agentlightning_dashboard.cli import missing_file
from agentlightning_memory import InMemoryLightningStore
from agentlightning_server import LightningStoreServer

AGL = [sys.executable, "-c", "from agentlightning.cli.app import main; main()"]


def start_dashboard(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*AGL, "dashboard", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def processes() -> Iterator[List[subprocess.Popen[str]]]:
    started: List[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.terminate()
        process.wait(timeout=30)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def announced_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("dashboard at http://127.0.0.1:"), line + (process.stderr.read() if process.stderr else "")
    return line.split()[2]


def test_a_file_store_is_served_read_only(sqlite_store: str, processes: List[subprocess.Popen[str]]) -> None:
    process = start_dashboard("--store", sqlite_store)
    processes.append(process)
    url = announced_url(process)
    assert url.endswith("/dashboard/")
    api = url.replace("/dashboard/", "/v1/agl")
    with httpx.Client(timeout=30) as http:
        assert http.get(url).status_code == 200
        assert http.get(api + "/rollouts").json()["total"] == 3
        assert http.get(api + "/resources").json()["total"] == 1
        assert http.post(api + "/queues/rollouts/enqueue", json={"rollouts": [{"input": 9}]}).status_code == 403
        assert http.get(api + "/rollouts").json()["total"] == 3


def test_an_http_store_is_read_through_its_token(processes: List[subprocess.Popen[str]]) -> None:
    import anyio

    store = InMemoryLightningStore(watchdog_interval=None)
    with LightningStoreServer(store, port=0, token="remote-secret") as remote:
        client = remote.client()
        anyio.run(client.enqueue_rollout, {"from": "remote"})
        anyio.run(client.close)
        process = start_dashboard("--store", remote.endpoint, "--store-token", "remote-secret")
        processes.append(process)
        api = announced_url(process).replace("/dashboard/", "/v1/agl")
        page = httpx.get(api + "/rollouts", timeout=30).json()
        assert [item["input"] for item in page["items"]] == [{"from": "remote"}]


@pytest.mark.parametrize("url", ["sqlite:///no/such/dir/store.db", "memory://"])
def test_a_store_it_cannot_open_is_refused_clearly(tmp_path: Path, url: str) -> None:
    command = [*AGL, "dashboard", "--store", url]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert "agl dashboard:" in result.stderr and ("no store file" in result.stderr or "pass its URL" in result.stderr)
    assert not (tmp_path / "no").exists()  # nothing created


@pytest.mark.parametrize(
    "url, expected",
    [
        ("sqlite:///relative/run.db", "relative/run.db"),
        ("sqlite:////abs/run.db", "/abs/run.db"),
        ("sqlite:///with%20space.db", "with space.db"),
        ("http://127.0.0.1:4747", None),
    ],
)
def test_missing_file_reads_sqlite_paths_like_the_sqlite_store(url: str, expected: Optional[str]) -> None:
    assert missing_file(url) == expected


def test_the_trainer_announces_the_dashboard_of_the_store_server_it_starts(capsys: pytest.CaptureFixture[str]) -> None:
    from agentlightning.execution.store_link import link_store

    link, server = link_store(InMemoryLightningStore(watchdog_interval=None))
    assert server is not None
    try:
        out = capsys.readouterr().out
        assert out == f"dashboard at {link.url}/dashboard/\n"
        assert httpx.get(f"{link.url}/dashboard/", timeout=30).status_code == 200
    finally:
        server.stop()
