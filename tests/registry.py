"""The APIs that the shared tests run over, read from the registries: a new API's folder (its client in
``ordersync/apis/``, its sandbox in ``ordersync/sandbox/``) is picked up by every test that uses :data:`API_NAMES`,
with no list to edit. Test data that only a test can hold (a test double of the vendor, a third-party tool's
configuration) is looked up with :func:`for_api`, which fails loudly for an API the table lacks instead of leaving
it out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import pytest

from ordersync import apis

T = TypeVar("T")

API_NAMES: list[str] = sorted(apis.registry())
"""Every API, in name order (``tests/test_registries.py`` checks that each has a sandbox)."""


def for_api(table: Mapping[str, T], api: str, what: str) -> T:
    """``table[api]``, or a failure that names what the test needs for the new API."""
    if api not in table:
        pytest.fail(f"this test has no {what} for the API '{api}': add one (the API is in the registry)")
    return table[api]
