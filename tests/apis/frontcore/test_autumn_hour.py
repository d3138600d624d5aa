"""Frontcore's date filters in the autumn hour that occurs twice: Oslo local time without a zone cannot say which
of the two readings it means, so a slice there asks up to an hour beyond itself at each end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from ordersync.config import parse_source
from ordersync.store import open_store
from ordersync.sync import sync_source
from tests.support import rows

OSLO = ZoneInfo("Europe/Oslo")
DOUBLED = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00-03:00 Oslo, twice: 00:00-02:00 UTC


def orders() -> list[dict[str, object]]:
    """An order every 20 seconds through the doubled hour (360), and one an hour on the days around it (48)."""
    moments = [DOUBLED + timedelta(seconds=20 * n) for n in range(360)]
    moments += [DOUBLED + timedelta(hours=h) for h in (*range(-24, 0), *range(2, 26))]
    return [{"id": 1000 + i, "created_at": m.astimezone(OSLO).isoformat(), "updated_at": None, "lines": [],
             "customer": None} for i, m in enumerate(sorted(moments))]


def widest(text: str, later: bool) -> datetime:
    """A zone-less local filter as the server of this test reads it: the later reading for an upper bound, the
    earlier for a lower one (the widest a real server could make)."""
    return datetime.fromisoformat(text).replace(tzinfo=OSLO, fold=int(later)).astimezone(UTC)


def server(stock: list[dict[str, object]]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """``/orders`` newest first, filtered by ``created_at_min`` (inclusive) and ``created_at_max`` (exclusive)."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) > 2000:
            return httpx.Response(400, json={"error": "test cap reached"})
        q = request.url.params
        low = widest(q["created_at_min"], later=False) if "created_at_min" in q else None
        high = widest(q["created_at_max"], later=True) if "created_at_max" in q else None
        found = [o for o in stock if (low is None or datetime.fromisoformat(str(o["created_at"])) >= low)
                 and (high is None or datetime.fromisoformat(str(o["created_at"])) < high)
                 and int(str(o["id"])) > int(q.get("since_id", 0))]
        found.sort(key=lambda o: -int(str(o["id"])))
        size, page = int(q["limit"]), int(q["page"])
        return httpx.Response(200, json=found[(page - 1) * size:page * size])

    return httpx.MockTransport(answer), sent


def test_a_sync_over_a_dense_doubled_autumn_hour_stores_every_order_once() -> None:
    """Before: a slice inside the doubled hour was answered the orders of the hour beyond it, and the engine,
    comparing them with the slice rather than with the bounds sent, stopped the pass ("ignore the date filters").
    Now the records inside the bounds sent are legitimate, and a slice whose answer is filled by the hour beyond
    it is paged rather than cut down to seconds that would each be answered the same hour."""
    stock = orders()
    transport, sent = server(stock)
    settings = {"type": "frontcore", "api_key": "k-123", "base_url": "http://fc.test/v2", "limit": 50,
                "streams": ["orders"], "requests_per_second": None, "max_retries": 0, "concurrency": 2}
    store = open_store("sqlite://")
    [result] = asyncio.run(sync_source(store, "fc", parse_source("fc", settings), transport=transport))
    assert result.ok, result.error
    assert rows(store, "select count(*), count(distinct order_id) from orders") == [(len(stock), len(stock))]
    assert len(sent) < 120, f"{len(sent)} requests for {len(stock)} orders"
