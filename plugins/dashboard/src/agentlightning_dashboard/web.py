"""The dashboard as an ASGI app: the files of ``static/``, with headers that keep the page to its own origin."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Tuple

if TYPE_CHECKING:  # annotations only: importing the plugin loads no web framework
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["STATIC_DIR", "CONTENT_SECURITY_POLICY", "create_web_app"]

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""Scripts, styles and requests only from the serving origin: the page makes no external network requests."""

_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}


def _content_type(path: Path) -> str:
    kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith("+xml") else kind


def _files(root: Path) -> Dict[str, Tuple[bytes, str]]:
    """URL path -> (content, content type) of every file under ``root``, read once (a few dozen kB in all)."""
    files: Dict[str, Tuple[bytes, str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            files["/" + path.relative_to(root).as_posix()] = (path.read_bytes(), _content_type(path))
    files["/"] = files["/index.html"]
    return files


class StaticPages:
    """Serves a fixed set of files (GET/HEAD); only the files it holds exist, so no path can reach outside them."""

    def __init__(self, files: Dict[str, Tuple[bytes, str]]) -> None:
        self.files = files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        root = scope.get("root_path", "")
        path = scope["path"][len(root) :] if root and scope["path"].startswith(root) else scope["path"]
        found = self.files.get(path)
        if scope["method"] not in ("GET", "HEAD"):
            status, body, ctype = 405, b"method not allowed", "text/plain; charset=utf-8"
        elif found is None:
            status, body, ctype = 404, f"no such file: {path}".encode(), "text/plain; charset=utf-8"
        else:
            status, (body, ctype) = 200, found
        headers: List[Tuple[bytes, bytes]] = [
            (b"content-type", ctype.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-cache"),
            (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if status == 405:
            headers.append((b"allow", b"GET, HEAD"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def create_web_app() -> ASGIApp:
    """The dashboard's ASGI app (what the ``dashboard`` web app registration builds)."""
    return StaticPages(_files(STATIC_DIR))
