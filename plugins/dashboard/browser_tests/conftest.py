"""Fixtures for the browser tests: a store filled by a real ``Trainer.dev`` run, served by ``agl store serve``
(with and without a token), and headless Chromium.

Without Chromium and its driver the tests are skipped, unless ``AGL_REQUIRE_BROWSER=1`` (the ``dashboard`` nox
session), where that is an error. Screenshots go to ``$AGL_DASHBOARD_SCREENSHOTS`` (default: a temporary folder).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, List

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from browser import CHROMIUM_NAMES, DRIVER_NAMES, find, start_browser

AGL = [sys.executable, "-c", "from agentlightning.cli.app import main; main()"]
TOKEN = "dashboard-test-token"  # noqa: S105 - a test server's token


class Served:
    """An ``agl store serve`` process: its endpoint, dashboard URL and an HTTP client for its REST API."""

    def __init__(self, store_url: str, *extra: str) -> None:
        command = [*AGL, "store", "serve", "--store", store_url, "--port", "0", *extra]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        listening = self.process.stdout.readline().split()
        assert listening and listening[0] == "AGL_STORE_SERVER_LISTENING", listening
        self.endpoint = listening[1]
        announced = self.process.stdout.readline().strip()
        assert announced == f"dashboard at {self.endpoint}/dashboard/", announced
        self.dashboard = self.endpoint + "/dashboard/"
        headers = {"Authorization": f"Bearer {TOKEN}"} if "--token" in extra else {}
        self.api = httpx.Client(base_url=self.endpoint + "/v1/agl/", headers=headers, timeout=60)

    def close(self) -> None:
        self.api.close()
        self.process.terminate()
        self.process.wait(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture(scope="session")
def run_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An SQLite store written by two real ``Trainer.dev`` runs (see ``fill_store``)."""
    from fill_store import fill

    path = tmp_path_factory.mktemp("run") / "store.db"
    fill(path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def served(run_store: str) -> Iterator[Served]:
    server = Served(run_store)
    yield server
    server.close()


@pytest.fixture(scope="session")
def served_with_token(run_store: str) -> Iterator[Served]:
    server = Served(run_store, "--token", TOKEN)
    yield server
    server.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("AGL_DASHBOARD_SCREENSHOTS") or tempfile.mkdtemp(prefix="agl-dashboard-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    chromium, driver = find(CHROMIUM_NAMES, "AGL_CHROMIUM"), find(DRIVER_NAMES, "AGL_CHROMEDRIVER")
    if chromium is None or driver is None:
        message = "Chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("AGL_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    session = start_browser(chromium, driver)
    yield session
    session.quit()


@pytest.fixture(scope="module")
def dashboard_page(browser: Any, served: Served) -> Any:
    """The browser on the dashboard (its modules importable from scripts), for tests of the page's own logic."""
    browser.get(served.dashboard + "#/resources")
    return browser


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """The browser with a clean tab state (no token) and its console errors checked at the end."""
    browser.get("about:blank")
    yield browser
    severe: List[Any] = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "401" not in e["message"]]
    browser.execute_script("try { sessionStorage.clear(); } catch (e) {}")
    assert not severe, severe
