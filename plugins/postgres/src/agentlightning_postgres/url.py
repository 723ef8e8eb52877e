"""``postgresql:`` store URLs: a libpq connection URL plus store options in its query string.

``postgresql://user:secret@db.example/agl?schema=run42&pool_max=16`` connects as libpq would to
``postgresql://user:secret@db.example/agl`` and keeps the store's tables in schema ``run42``. Query parameters that
are not store options (``sslmode``, ``connect_timeout``, ...) are left in the URL for libpq.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any, Dict, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["parse_url", "URL_OPTIONS", "check_schema_name", "check_pipeline_mode", "database_is_local"]

URL_OPTIONS: Dict[str, type] = {
    "schema": str,
    "pool_min": int,
    "pool_max": int,
    "pool_timeout": float,
    "scan_debounce_seconds": float,
    "watchdog_interval": float,
    "pipeline": str,
    "inline": str,
}

PIPELINE_MODES = ("auto", "on", "off")

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")


def check_schema_name(schema: str) -> str:
    """``schema`` if it is a plain lower-case SQL identifier (it also names the notification channel)."""
    if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
        raise ValueError(
            f"PostgreSQL store schema must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 51 characters), "
            f"got {schema!r}"
        )
    return schema


def check_pipeline_mode(mode: str, option: str = "pipeline") -> str:
    """``mode`` if it is one of :data:`PIPELINE_MODES` (the values of the ``pipeline`` and ``inline`` options)."""
    if mode not in PIPELINE_MODES:
        raise ValueError(f"PostgreSQL store {option} must be one of {', '.join(PIPELINE_MODES)}, got {mode!r}")
    return mode


def _local_host(host: str) -> bool:
    if host in ("", "localhost") or host.startswith(("/", "@")):  # the default, a unix socket folder, an abstract one
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def database_is_local(conninfo: str) -> bool:
    """Whether every host a libpq connection string names (``hostaddr`` first, else ``host``, else ``$PGHOST``;
    none means the local unix socket) is this machine: a unix socket, ``localhost`` or a loopback address."""
    import psycopg.conninfo

    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    hosts = str(params.get("hostaddr") or params.get("host") or os.environ.get("PGHOST", ""))
    return all(_local_host(host.strip()) for host in hosts.split(","))


def parse_url(url: str) -> Tuple[str, Dict[str, Any]]:
    """The libpq connection URL and the store options of a ``postgresql:``/``postgres:`` URL (ValueError naming
    what is wrong)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise ValueError(f"PostgresLightningStore opens postgresql:// URLs, got {url!r}")
    options: Dict[str, Any] = {}
    passed = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        kind = URL_OPTIONS.get(key)
        if kind is None:
            passed.append((key, value))
            continue
        try:
            options[key] = kind(value)
        except ValueError as exc:
            raise ValueError(f"postgresql URL: option {key}={value!r} is not a valid {kind.__name__}") from exc
    if "schema" in options:
        check_schema_name(options["schema"])
    for option in ("pipeline", "inline"):
        if option in options:
            check_pipeline_mode(options[option], option)
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(passed), parts.fragment))
    return conninfo, options
