"""agentlightning-dashboard: a web dashboard served by every store server at ``/dashboard/`` (and ``agl dashboard``).

The page is static (ES modules, CSS, SVG in ``static/``) and reads the store through the REST API under ``/v1/agl``
with the server's bearer token, so it works against any compatible server.
"""

from __future__ import annotations

from .web import STATIC_DIR, create_web_app

__all__ = ["STATIC_DIR", "create_web_app"]
