"""``sqlite:`` store URLs: ``sqlite:///relative/run.db`` (from the working directory), ``sqlite:////abs/run.db``.

Options may ride in the query string: ``sqlite:///run.db?synchronous=FULL&max_spans=100000``.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["parse_url", "URL_OPTIONS"]

URL_OPTIONS: Dict[str, type] = {
    "synchronous": str,
    "busy_timeout": float,
    "lock_timeout": float,
    "max_spans": int,
    "max_span_bytes": int,
    "scan_debounce_seconds": float,
    "watchdog_interval": float,
}


def parse_url(url: str) -> Tuple[str, Dict[str, Any]]:
    """The file path and the options of a ``sqlite:`` URL; raises ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite":
        raise ValueError(f"SqliteLightningStore opens sqlite:// URLs, got {url!r}")
    if parts.netloc:
        raise ValueError(
            f"sqlite URL {url!r} names a host ({parts.netloc!r}); use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    path = unquote(parts.path)
    if not path.startswith("/") or len(path) < 2:
        raise ValueError(f"sqlite URL {url!r} names no file; use sqlite:///relative/path.db or sqlite:////abs/path.db")
    path = path[1:]  # three slashes: relative to the working directory; four: absolute
    options: Dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        kind = URL_OPTIONS.get(key)
        if kind is None:
            raise ValueError(f"sqlite URL {url!r}: unknown option {key!r} (known: {', '.join(URL_OPTIONS)})")
        try:
            options[key] = kind(value)
        except ValueError as exc:
            raise ValueError(f"sqlite URL {url!r}: option {key}={value!r} is not a valid {kind.__name__}") from exc
    return path, options
