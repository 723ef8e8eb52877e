"""Fixtures of the SQLite store tests: a fresh backend on a temporary file."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from agentlightning_sqlite import SqliteBackend


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def backend(db_path: Path) -> Iterator[SqliteBackend]:
    b = SqliteBackend(db_path)
    try:
        yield b
    finally:
        b.close()
