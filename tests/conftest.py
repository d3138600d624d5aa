from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ordersync.store import Store, open_store
from tests.pg_server import PgServer


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'orders.db'}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL server for the whole test session (started on first use, stopped at the end)."""
    with PgServer.start() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty PostgreSQL database for one test: ``postgresql://USER:PASSWORD@127.0.0.1:PORT/NAME``."""
    return pg_server.new_database()
