"""Fixtures of the dedupe tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from warehouse.db import Warehouse


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    """A new, migrated warehouse, opened as the writer."""
    with Warehouse.open(tmp_path / "warehouse.duckdb", lock_timeout=1) as warehouse:
        yield warehouse
