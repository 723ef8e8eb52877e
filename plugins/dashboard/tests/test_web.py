"""The dashboard's static app: what it serves, with which headers, and that the page's own files are all there."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Iterator

import httpx
import pytest
from agentlightning.plugins import WEB_APPS, get_plugin_manager
from agentlightning_dashboard import STATIC_DIR, create_web_app
from agentlightning_dashboard.web import CONTENT_SECURITY_POLICY
from agentlightning_memory import InMemoryLightningStore
from agentlightning_server import LightningStoreServer


@pytest.fixture(scope="module")
def server() -> Iterator[LightningStoreServer]:
    with LightningStoreServer(InMemoryLightningStore(watchdog_interval=None), port=0, token="tok") as served:
        yield served


def test_the_plugin_registers_the_dashboard_web_app() -> None:
    registration = get_plugin_manager().get(WEB_APPS, "dashboard")
    assert registration.plugin == "dashboard"
    assert callable(registration.create())


def test_a_store_server_serves_the_page_at_root_and_under_dashboard(server: LightningStoreServer) -> None:
    assert server.web_app_urls == {"dashboard": server.endpoint + "/dashboard/"}
    page = httpx.get(server.endpoint + "/", follow_redirects=True, timeout=30)
    assert page.status_code == 200 and str(page.url) == server.endpoint + "/dashboard/"
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.text == (STATIC_DIR / "index.html").read_text()
    assert httpx.get(server.endpoint + "/v1/agl/rollouts", timeout=30).status_code == 401  # the data needs the token


@pytest.mark.parametrize(
    "path, served",
    [
        ("/dashboard/js/app.js", True),
        ("/dashboard/style.css", True),
        ("/dashboard/nope.js", False),
        ("/dashboard/../pyproject.toml", False),
        ("/dashboard/%2e%2e/web.py", False),
        ("/dashboard/js/../../web.py", False),
        ("/dashboard//etc/passwd", False),
    ],
)
def test_only_the_shipped_files_exist(server: LightningStoreServer, path: str, served: bool) -> None:
    with httpx.Client(timeout=30) as http:
        request = http.build_request("GET", server.endpoint + path)
        request.url = request.url.copy_with(raw_path=path.encode())  # as sent, not normalised by the client
        answer = http.send(request)
    assert (answer.status_code == 200) == served, answer.text
    if not served:
        assert "agentlightning" not in answer.text and "root:" not in answer.text


def test_writes_are_refused_and_head_has_no_body(server: LightningStoreServer) -> None:
    answer = httpx.post(server.endpoint + "/dashboard/index.html", timeout=30)
    assert (answer.status_code, answer.headers["allow"]) == (405, "GET, HEAD")
    head = httpx.head(server.endpoint + "/dashboard/style.css", timeout=30)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0


def test_scripts_import_only_shipped_modules_and_fetch_nothing_external() -> None:
    files = {p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()}
    for script in STATIC_DIR.rglob("*.js"):
        text = script.read_text()
        for target in re.findall(r"""(?:import|from)\s*["']([^"']+)["']""", text):
            resolved = (script.parent / target).resolve().relative_to(STATIC_DIR.resolve()).as_posix()
            assert resolved in files, f"{script.name} imports {target}, which the package does not ship"
        text = text.replace('"http://www.w3.org/2000/svg"', "")  # the SVG namespace names, it is not fetched
        assert not re.search(r"https?://", text), f"{script.name} names an external URL"
    index = (STATIC_DIR / "index.html").read_text()
    for target in re.findall(r'(?:src|href)="([^"#]+)"', index):
        assert target in files, f"index.html refers to {target}, which the package does not ship"


def test_web_app_alone_answers_paths_relative_to_its_root() -> None:
    import anyio

    app = create_web_app()
    sent: list = []

    async def call() -> None:
        scope = {"type": "http", "method": "GET", "path": "/x/dashboard/style.css", "root_path": "/x/dashboard"}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, None, send)  # type: ignore[arg-type]

    anyio.run(call)
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == (STATIC_DIR / "style.css").read_bytes()


def test_importing_the_plugin_and_its_hooks_loads_no_web_framework() -> None:
    code = (
        "import sys, agentlightning, agentlightning_dashboard, agentlightning_dashboard.hooks\n"
        "print(','.join(m for m in ('starlette', 'uvicorn', 'httpx') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == ""
