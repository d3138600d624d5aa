"""A record far ahead of the others moves no cursor past where new records are (issue 24, point 8), through a real
server on 127.0.0.1 and the real engine: a Firespring order dated ``9999-01-01`` and a Frontcore order with id
``10**15`` are stored and said in the run's notes, and the orders made after them are stored by the next run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ordersync.apis.frontcore.client import plausible_max_id
from ordersync.sandbox.runner import RunningServer, start_in_thread
from ordersync.store import Store
from tests.support import rows, sync

OSLO = ZoneInfo("Europe/Oslo")


@dataclass
class Vendor:
    """Orders as a vendor keeps them: each with the creation time its filters use (``real``), and the record it
    answers, whose own date or id may be absurd."""

    orders: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)

    def add(self, real: datetime, record: dict[str, Any]) -> None:
        self.orders.append((real, record))

    async def firespring(self, request: Request) -> Response:
        q = request.query_params
        start = date.fromisoformat(q["date_start"]) if q.get("date_start") else date.min
        end = date.fromisoformat(q["date_end"]) if q.get("date_end") else date.max
        data = [r for real, r in self.orders if start <= real.date() < end] if q.get("page", "1") == "1" else []
        meta = {"pagination": {"total": len(data), "count": len(data), "per_page": 100, "current_page": 1,
                               "total_pages": 1}}
        return Response(orjson.dumps({"data": data, "meta": meta}), media_type="application/json")

    async def frontcore(self, request: Request) -> Response:
        q = request.query_params

        def local(name: str, default: datetime) -> datetime:
            text = q.get(name)
            return datetime.fromisoformat(text).replace(tzinfo=OSLO) if text else default

        low, high = local("created_at_min", datetime.min.replace(tzinfo=UTC)), \
            local("created_at_max", datetime.max.replace(tzinfo=UTC))
        since = int(q.get("since_id") or 0)
        data = [r for real, r in self.orders
                if low <= real <= high and r["id"] > since and (not q.get("updated_at_min") or r["updated_at"])]
        return Response(orjson.dumps(data if q.get("page", "1") == "1" else []), media_type="application/json")


@pytest.fixture
def vendor() -> Iterator[tuple[Vendor, RunningServer]]:
    shop = Vendor()
    app = Starlette(routes=[Route("/websites/4/orders", shop.firespring), Route("/v2/orders", shop.frontcore)])
    server = start_in_thread(app)
    yield shop, server
    server.stop()


def firespring_order(i: int, created: datetime | str) -> dict[str, Any]:
    stamp = created if isinstance(created, str) else created.isoformat()
    return {"id": i, "date_created": stamp, "currency": "USD", "amount_paid": 1000, "pricing": {"total": 1000}}


def frontcore_order(i: int, created: datetime) -> dict[str, Any]:
    return {"id": i, "created_at": created.astimezone(OSLO).isoformat(), "updated_at": None, "lines": [],
            "calculated_totals": {"total_amount_incl_discounts_and_vat": "10.00"}}


def stored(store: Store, source: str) -> set[str]:
    return {r[0] for r in rows(store, "SELECT order_id FROM orders WHERE source = ?", source)}


def test_a_firespring_order_dated_9999_is_stored_said_and_the_next_run_stores_new_orders(
        store: Store, vendor: tuple[Vendor, RunningServer]) -> None:
    shop, server = vendor
    settings = {"type": "firespring", "api_key": "k", "base_url": server.base_url, "website_id": 4,
                "requests_per_second": 1000, "max_retries": 0}
    now = datetime.now(UTC).replace(microsecond=0)
    shop.add(now - timedelta(days=3), firespring_order(1, now - timedelta(days=3)))
    shop.add(now - timedelta(days=2), firespring_order(2, "9999-01-01T00:00:00+00:00"))  # a typo'd year
    first = sync(store, "fs", settings)
    assert [r.error for r in first] == [None]
    assert stored(store, "fs") == {"1", "2"}  # the odd order is kept
    assert len(first[0].notes) == 1 and "dated 9999-01-01" in first[0].notes[0]
    assert "\n" not in first[0].notes[0] and "datetime(" not in first[0].notes[0]

    shop.add(now - timedelta(hours=1), firespring_order(3, now - timedelta(hours=1)))
    second = sync(store, "fs", settings)
    assert [r.error for r in second] == [None]
    assert stored(store, "fs") == {"1", "2", "3"}


def test_a_frontcore_order_with_id_10_to_the_15_is_stored_said_and_later_orders_are_still_asked_for(
        store: Store, vendor: tuple[Vendor, RunningServer]) -> None:
    shop, server = vendor
    settings = {"type": "frontcore", "api_key": "k", "base_url": f"{server.base_url}/v2", "streams": ["orders"],
                "requests_per_second": 1000, "max_retries": 0}
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(1001, 1006):
        shop.add(now - timedelta(days=2, minutes=i), frontcore_order(i, now - timedelta(days=2, minutes=i)))
    shop.add(now - timedelta(days=1), frontcore_order(10**15, now - timedelta(days=1)))  # a test id, or a typo
    first = sync(store, "fc", settings)
    assert [r.error for r in first] == [None]
    assert stored(store, "fc") == {*map(str, range(1001, 1006)), str(10**15)}
    assert first[0].notes == [f"id {10**15} is far beyond the other ids (the highest of them is 1005): its record "
                              "is stored, but new records are still asked for above id 1005"]

    for i in (1006, 1007):
        shop.add(now - timedelta(hours=1, minutes=i), frontcore_order(i, now - timedelta(hours=1, minutes=i)))
    second = sync(store, "fc", settings)
    assert [r.error for r in second] == [None]
    assert {"1006", "1007"} <= stored(store, "fc")
    assert len(second[0].notes) == 1 and "above id 1007" in second[0].notes[0]  # still said: still far beyond


def test_the_plausibility_rule_believes_an_id_once_another_comes_near_it() -> None:
    assert plausible_max_id(None, 10**15, None) == 10**15  # nothing to judge it by
    assert plausible_max_id(1005, 10**15, None) == 1005
    assert plausible_max_id(None, 10**15, 1005) == 1005
    assert plausible_max_id(0, 5_000_000, None) == 5_000_000  # a stored 0: no order seen yet
    assert plausible_max_id(1005, 5_000_007, 5_000_000) == 5_000_007  # ids moved to a new range: believed
    assert plausible_max_id(1005, 1300, 1200) == 1300
