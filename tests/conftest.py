from __future__ import annotations

from pathlib import Path

import pytest

from ordersync.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'orders.db'}")
