"""Web apps that plugins register, served beside the REST API; the read-only mode that `agl dashboard` uses."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import httpx
import pytest
from agentlightning.utils.server_launcher import BackgroundServer
from agentlightning_memory import InMemoryLightningStore
from agentlightning_server.app import create_app
from agentlightning_server.web_apps import WebAppMounts


class Echo:
    """An ASGI web app that answers with the path and root_path it was given."""

    def __init__(self, label: str) -> None:
        self.label = label

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        body = f"{self.label} {scope['method']} {scope['path']} root={scope['root_path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


def serve(web_apps: Dict[str, Any], **settings: Any) -> BackgroundServer:
    store = InMemoryLightningStore(watchdog_interval=None)
    return BackgroundServer(create_app(store, web_apps=web_apps, **settings), port=0, name="test server")


@pytest.fixture
def one_app() -> Iterator[Tuple[str, httpx.Client]]:
    with serve({"board": Echo("board")}, token="s3cret") as server:
        with httpx.Client(base_url=server.endpoint, follow_redirects=False, timeout=30) as http:
            yield server.endpoint, http


def test_a_web_app_is_served_under_its_name_without_the_token(one_app: Tuple[str, httpx.Client]) -> None:
    _, http = one_app
    page = http.get("/board/js/app.js?x=1")
    assert page.status_code == 200
    assert page.text == "board GET /board/js/app.js root=/board"
    assert http.get("/v1/agl/rollouts").status_code == 401  # the data still needs the token


def test_root_and_bare_name_redirect_to_the_web_app(one_app: Tuple[str, httpx.Client]) -> None:
    _, http = one_app
    for path in ("/", "/board"):
        answer = http.get(path)
        assert (answer.status_code, answer.headers["location"]) == (307, "/board/")
    assert http.post("/").status_code == 401  # only GET/HEAD of / redirect; the rest is the API's (token first)


def test_with_several_web_apps_root_is_not_redirected() -> None:
    with serve({"a": Echo("a"), "b": Echo("b")}) as server:
        with httpx.Client(base_url=server.endpoint, timeout=30) as http:
            assert http.get("/a/x").text.startswith("a GET /a/x")
            assert http.get("/b/").text.startswith("b GET /b/")
            assert http.get("/").status_code == 404


def test_without_web_apps_the_api_answers_unknown_paths() -> None:
    with serve({}) as server:
        answer = httpx.get(server.endpoint + "/", timeout=30)
        assert answer.status_code == 404 and answer.json()["error_type"] == "InvalidRequestError"


@pytest.mark.parametrize("name", ["", "v1", "a/b"])
def test_web_app_names_must_be_one_free_path_segment(name: str) -> None:
    with pytest.raises(ValueError, match="single non-empty path segment"):
        WebAppMounts(Echo("x"), {name: Echo("x")})


def test_read_only_server_answers_reads_and_refuses_writes() -> None:
    store = InMemoryLightningStore(watchdog_interval=None)
    with BackgroundServer(create_app(store, web_apps={}, read_only=True), port=0, name="test server") as server:
        with httpx.Client(base_url=server.endpoint + "/v1/agl", timeout=30) as http:
            refused: List[Tuple[str, Any]] = [
                ("/queues/rollouts/enqueue", {"rollouts": [{"input": 1}]}),
                ("/rollouts", {"input": 1}),
                ("/resources", {"llm": {"resource_type": "llm", "endpoint": "http://x", "model": "m"}}),
            ]
            for path, body in refused:
                answer = http.post(path, json=body)
                assert answer.status_code == 403, path
                assert answer.json()["error_type"] == "PermissionError"
                assert "read-only" in answer.json()["detail"]
            otlp = http.post(server.endpoint + "/v1/traces", json={}, headers={"content-type": "application/json"})
            assert otlp.status_code == 403
            assert http.get("/rollouts").json()["total"] == 0  # nothing was written
            assert http.post("/rollouts/search", json={"limit": 5}).status_code == 200
            assert http.get("/statistics").status_code == 200
