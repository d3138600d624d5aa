from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Running, running

KEY = "test-key-ABC123"


@pytest.fixture(scope="module")
def fc() -> Iterator[Running]:
    """One Frontcore sandbox with 600 orders for the read-only tests of a module."""
    with running("frontcore", orders=600, seed=5, api_key=KEY) as sandbox:
        yield sandbox
