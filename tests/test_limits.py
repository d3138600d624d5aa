"""Bounded answers (issue 10, item 4): an answer above ``max_body_mb`` and a record above ``max_record_mb`` are
refused with one line naming the source, the request and the setting to raise; nothing of them is stored."""

from __future__ import annotations

import asyncio

import httpx
import orjson

from ordersync.config import parse_source
from ordersync.store import Store
from ordersync.sync import sync_source
from tests.support import rows

SETTINGS = {"type": "frontcore", "api_key": "k-secret-123", "base_url": "http://fc.invalid/v2", "streams": ["orders"],
            "requests_per_second": 1000, "max_retries": 0}


def order(i: int, note: str = "") -> dict[str, object]:
    return {"id": i, "created_at": "2026-01-01T10:00:00+01:00", "updated_at": None, "lines": [], "note": note}


def sync_with(store: Store, answer: bytes, **settings: object) -> list[str | None]:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=answer))
    results = asyncio.run(sync_source(store, "shop", parse_source("shop", {**SETTINGS, **settings}),
                                      transport=transport))
    return [r.error for r in results]


def test_a_record_above_the_cap_is_refused_and_its_page_not_stored(store: Store) -> None:
    page = orjson.dumps([order(1), order(7, "x" * 30_000)])
    [error] = sync_with(store, page, max_record_mb=0.01)
    assert error is not None and "\n" not in error
    assert "id 7" in error and "max_record_mb = 0.01" in error and "page was not stored" in error
    assert "k-secret-123" not in error
    assert rows(store, "SELECT count(*) FROM orders") == [(0,)]
    [ok] = sync_with(store, page, max_record_mb=1)  # raised: the same page is stored
    assert ok is None and rows(store, "SELECT count(*) FROM orders") == [(2,)]


def test_a_record_cap_check_costs_nothing_for_small_answers(store: Store) -> None:
    [error] = sync_with(store, orjson.dumps([order(i) for i in range(1, 50)]))
    assert error is None and rows(store, "SELECT count(*) FROM orders") == [(49,)]


def test_an_answer_above_the_body_cap_names_the_source_and_the_setting(store: Store) -> None:
    page = orjson.dumps([order(i, "y" * 5000) for i in range(1, 400)])  # about 2 MB
    [error] = sync_with(store, page, max_body_mb=1)
    assert error is not None and "\n" not in error
    assert "shop (frontcore): GET /v2/orders?" in error and "max_body_mb" in error and "k-secret-123" not in error
    assert rows(store, "SELECT count(*) FROM orders") == [(0,)]
