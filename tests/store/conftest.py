from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ordersync.store import Store, open_store

KINDS = ["sqlite", "postgresql", "duckdb"]


@pytest.fixture(params=KINDS)
def dest_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh destination of each kind (PostgreSQL: a new database on the test server)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    suffix = "db" if request.param == "sqlite" else "duckdb"
    return f"{request.param}:///{tmp_path / f'orders.{suffix}'}"


@pytest.fixture
def any_store(dest_url: str) -> Iterator[Store]:
    store = open_store(dest_url)
    yield store
    store.close()
