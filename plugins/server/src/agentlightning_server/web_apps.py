"""Serving the web apps that plugins register (``agentlightning_register_web_apps``) beside the REST API."""

from __future__ import annotations

import logging
from typing import Dict, List, Mapping, Tuple

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["WebAppMounts", "installed_web_app_names", "installed_web_apps", "web_app_urls"]

logger = logging.getLogger(__name__)


def installed_web_app_names() -> List[str]:
    """Names of the installed web apps (nothing imported or built)."""
    from agentlightning.plugins import WEB_APPS, get_plugin_manager

    return [registration.name for registration in get_plugin_manager().registry(WEB_APPS)]


def web_app_urls(endpoint: str) -> Dict[str, str]:
    """name -> URL of every installed web app on a store server at ``endpoint``."""
    return {name: f"{endpoint.rstrip('/')}/{name}/" for name in installed_web_app_names()}


def installed_web_apps() -> Dict[str, ASGIApp]:
    """name -> ASGI app of every installed web app; one whose factory fails is logged and left out."""
    from agentlightning.plugins import WEB_APPS, get_plugin_manager

    apps: Dict[str, ASGIApp] = {}
    for registration in get_plugin_manager().registry(WEB_APPS):
        try:
            apps[registration.name] = registration.create()
        except Exception:
            logger.exception("web app %r of plugin %r failed to load", registration.name, registration.plugin)
    return apps


async def _redirect(location: str, send: Send) -> None:
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 307, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class WebAppMounts:
    """Pure ASGI: ``/<name>/...`` goes to that web app (``root_path`` extended by ``/<name>``), ``/<name>`` and, when
    there is exactly one web app, ``GET /`` redirect to ``/<name>/``; everything else goes to ``app``."""

    def __init__(self, app: ASGIApp, web_apps: Mapping[str, ASGIApp]) -> None:
        for name in web_apps:
            if not name or "/" in name or name in ("v1",):
                raise ValueError(f"web app name {name!r}: a single non-empty path segment other than 'v1' is needed")
        self.app = app
        self.mounts: Tuple[Tuple[str, ASGIApp], ...] = tuple((f"/{name}", web) for name, web in web_apps.items())
        self.home = f"/{next(iter(web_apps))}/" if len(web_apps) == 1 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root = scope.get("root_path", "")
            path = scope["path"]
            relative = path[len(root) :] if root and path.startswith(root) else path
            if relative == "/" and self.home is not None and scope["method"] in ("GET", "HEAD"):
                await _redirect(root + self.home, send)
                return
            for prefix, web in self.mounts:
                if relative == prefix:
                    await _redirect(root + prefix + "/", send)
                    return
                if relative.startswith(prefix + "/"):
                    await web({**scope, "root_path": root + prefix}, receive, send)
                    return
        await self.app(scope, receive, send)
