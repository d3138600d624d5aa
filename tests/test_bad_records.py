"""One bad record is one reject, never a failed page (issue 24, points 7, 9 and 10), through a real server on
127.0.0.1 and the real engine: list elements that are not objects, a lone surrogate escape, a number beyond a
double, nesting deeper than orjson reads, dates beyond the calendar once in UTC, amounts that are not numbers
(never stored as NULL), a 5,000-digit amount (refused in our words), and ids beyond 64 bits (kept exactly)."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ordersync.sandbox.runner import RunningServer, start_in_thread
from ordersync.store import Store
from tests.support import rows, sync

BIG = 123456789012345678901234567890  # two ids beyond 64 bits, one apart: orjson reads both as one float


def order(i: int | str, created: str = "2026-06-01T10:00:00+02:00", total: object = "10.00") -> bytes:
    return orjson.dumps({"id": i, "created_at": created, "updated_at": None, "lines": [],
                         "calculated_totals": {"total_amount_incl_discounts_and_vat": total}})


FRONTCORE_PAGE = b"[" + b",".join([
    order(1), order(2), b"null", b"3", b'"x"',
    b'{"id": 11, "created_at": "2026-06-01T10:00:00+02:00", "lines": [], "note": "cut \\ud83d"}',
    b'{"id": 12, "created_at": "2026-06-01T10:00:00+02:00", "lines": [], "calculated_totals": '
    b'{"total_amount_incl_discounts_and_vat": 1e400}}',
    b'{"id": 13, "created_at": "2026-06-01T10:00:00+02:00", "lines": [], "deep": ' + b"[" * 1100 + b"]" * 1100 + b"}",
    order(14, created="0001-01-01T00:00:00+01:00"), order(15, created="9999-12-31T23:59:59-01:00"),
    order(16, total="12,50"), order(17, total="9" * 5000), order(18, total="lots"),
    b'{"id": %d, "created_at": "2026-06-01T10:00:00+02:00", "lines": []}' % BIG,
    b'{"id": %d, "created_at": "2026-06-01T10:00:00+02:00", "lines": []}' % (BIG + 1),
]) + b"]"


def firespring_page() -> bytes:
    def one(i: int, paid: object = 1000, total: object = 1000) -> dict[str, object]:
        return {"id": i, "date_created": "2026-06-01T10:00:00-05:00", "currency": "USD", "amount_paid": paid,
                "pricing": {"total": total}}

    data = [one(1), one(2, paid="lots"), one(3, total="57.19"), one(4, total="5719")]
    return orjson.dumps({"data": data, "meta": {"pagination": {"total": 4, "count": 4, "per_page": 100,
                                                               "current_page": 1, "total_pages": 1}}})


def first_answer_only(body: bytes, empty: bytes) -> Route:
    """The records on the first request, nothing after: whatever the paging asks, each record is read once."""
    answered = [False]

    async def answer(request: Request) -> Response:
        first, answered[0] = not answered[0], True
        return Response(body if first else empty, media_type="application/json")

    return answer  # type: ignore[return-value]


@pytest.fixture
def vendor() -> Iterator[RunningServer]:
    empty_fs = orjson.dumps({"data": [], "meta": {"pagination": {"total": 0, "count": 0, "per_page": 100,
                                                                 "current_page": 1, "total_pages": 1}}})
    app = Starlette(routes=[Route("/v2/orders", first_answer_only(FRONTCORE_PAGE, b"[]")),  # type: ignore[arg-type]
                            Route("/websites/4/orders", first_answer_only(firespring_page(), empty_fs))])  # type: ignore[arg-type]
    server = start_in_thread(app)
    yield server
    server.stop()


def test_each_bad_frontcore_record_is_one_reject_and_the_page_is_stored(store: Store, vendor: RunningServer) -> None:
    results = sync(store, "fc", {"type": "frontcore", "api_key": "k", "base_url": f"{vendor.base_url}/v2",
                                 "streams": ["orders"], "requests_per_second": 1000, "max_retries": 0})
    assert [r.error for r in results] == [None]
    stored = {r[0] for r in rows(store, "SELECT order_id FROM orders WHERE source = 'fc'")}
    assert stored == {"1", "2", "14", "15", str(BIG), str(BIG + 1)}  # the big ids exactly, as two orders
    reasons = {record_id: reason for record_id, reason in
               rows(store, "SELECT record_id, reason FROM _ordersync_rejects WHERE source = 'fc'")}
    assert len(rows(store, "SELECT 1 FROM _ordersync_rejects WHERE record_id IS NULL")) == 3  # null, 3, "x"
    assert "surrogate" in reasons["11"] and "nested deeper than 500" in reasons["13"]
    assert "the amount 1e400... is about 10^400: no currency amount is that large" in reasons["12"]
    assert "'12,50' is not a number (a decimal comma?" in reasons["16"]
    assert "5,000 digits" in reasons["17"] and "set_int_max_str_digits" not in reasons["17"]
    assert "'lots' is not a number" in reasons["18"]
    created = dict(rows(store, "SELECT order_id, created_at FROM orders WHERE order_id IN ('14', '15')"))
    assert str(created["14"]).startswith("0001-01-01") and str(created["15"]).startswith("9999-12-31")


def test_firespring_amounts_that_are_not_cents_are_rejected_not_stored_as_null(store: Store,
                                                                            vendor: RunningServer) -> None:
    results = sync(store, "fs", {"type": "firespring", "api_key": "k", "website_id": 4, "base_url": vendor.base_url,
                                 "requests_per_second": 1000, "max_retries": 0})
    assert [r.error for r in results] == [None]
    assert rows(store, "SELECT order_id, total_minor, is_paid FROM orders ORDER BY order_id") == [
        ("1", 1000, 1), ("4", 5719, 0)]
    reasons = dict(rows(store, "SELECT record_id, reason FROM _ordersync_rejects ORDER BY record_id"))
    assert reasons == {"2": "amount_paid is 'lots', not a whole number of minor units (cents) as documented",
                       "3": "pricing.total is '57.19', not a whole number of minor units (cents) as documented"}
