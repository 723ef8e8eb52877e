"""LightningStore on PostgreSQL: the shared store engine over psycopg 3 and a connection pool."""

from __future__ import annotations

from .backend import PostgresBackend
from .store import PostgresLightningStore
from .transaction import PostgresTransaction

__all__ = ["PostgresLightningStore", "PostgresBackend", "PostgresTransaction"]
