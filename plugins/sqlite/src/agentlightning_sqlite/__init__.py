"""Durable, multi-process LightningStore in one SQLite file (stdlib ``sqlite3`` only)."""

from __future__ import annotations

from .backend import SqliteBackend
from .retention import Retention
from .store import SqliteLightningStore
from .transaction import SqliteTransaction

__all__ = ["SqliteLightningStore", "SqliteBackend", "SqliteTransaction", "Retention"]
