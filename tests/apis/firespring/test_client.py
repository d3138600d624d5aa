"""The client against the documentation: settings, requests sent, published rows, look-back, resume, secrets."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordersync.apis.firespring.client import FirespringClient, FirespringOrders
from ordersync.apis.firespring.normalize import order_rows
from ordersync.config import parse_source
from ordersync.errors import ConfigError
from ordersync.store import Store
from ordersync.sync import sync_source
from tests.apis.firespring.conftest import KEY, Recorder, api, fetch_all, sync_recorded
from tests.support import ANCHOR, InProcess, Running, in_process, rows, sync

SAMPLE = Path(__file__).parent / "fixtures" / "sample_response.json"
REQUIRED = {"billing_address", "items", "message", "payment_transactions", "user"}


# --- settings -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("override", "words"), [
    ({"website_id": None}, ["website_id", "required"]),
    ({"count": 101}, ["count", "100"]),
    ({"count": 0}, ["count", "1"]),
    ({"status": "open"}, ["status", "pending_approval", "completed"]),
    ({"includes": ["user", "customer"]}, ["includes", "shipments.shipping_method"]),
    ({"sort": "id"}, ["sort", "date_created", "user.username"]),
    ({"direction": "up"}, ["direction", "asc", "desc"]),
    ({"date_start": "2024/01/01"}, ["date_start", "YYYY-MM-DD"]),
    ({"date_end": "2024-02-30"}, ["date_end", "YYYY-MM-DD"]),
    ({"date_start": "2024-02-01", "date_end": "2024-01-01"}, ["date_end", "after date_start"]),
    ({"api_version": 3}, ["api_version", "1", "2"]),
    ({"lookback_days": -1}, ["lookback_days"]),
    ({"search": ""}, ["search"]),
    ({"colour": "red"}, ["colour", "unknown setting"]),
])
def test_bad_settings_are_refused_before_any_request(override: dict[str, Any], words: list[str]) -> None:
    settings: dict[str, Any] = {"type": "firespring", "api_key": "secret-abc", "website_id": 4, **override}
    settings = {k: v for k, v in settings.items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        parse_source("web", settings)
    message = str(caught.value)
    assert all(word in message for word in words), message
    assert "secret-abc" not in message


def test_defaults() -> None:
    s = parse_source("web", {"type": "firespring", "api_key": "k", "website_id": 4})
    orders = FirespringOrders(FirespringClient("web", s))
    assert s.base_url == "https://api.firespring.com"
    filters = orders.shared_params()
    assert filters["count"] == 100 and filters["sort"] == "date_created" and filters["direction"] == "asc"
    assert set(filters["includes"].split(",")) == REQUIRED
    assert s.lookback_days == 30 and s.api_version == 1


# --- requests as documented -----------------------------------------------------------------------------
def test_client_sends_documented_requests(store: Store) -> None:
    with in_process("firespring", orders=400, seed=11) as shared:  # in-process: no connection error to retry
        sends_documented_requests(shared, store)


def sends_documented_requests(shared: InProcess, store: Store) -> None:
    everything = fetch_all(shared)
    days = sorted({datetime.fromisoformat(r["date_created"]).date() for r in everything})
    start, end = days[10].isoformat(), days[-10].isoformat()
    settings = shared.settings(count=7, status="completed", search="a", date_start=start, date_end=end,
                               sort="user.username", direction="desc", api_version=2, includes=["notes", "user"],
                               concurrency=3)
    recorder = Recorder()
    [result] = sync_recorded(store, "web", settings, recorder)
    assert result.ok, result.error
    expected_auth = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    slices = []
    for request in recorder.requests:
        assert request.method == "GET" and request.url.path == "/websites/4/orders"
        assert request.headers["authorization"] == expected_auth
        assert request.headers["firespring-api-version"] == "2"
        params = dict(request.url.params)
        params.pop("page")
        lo, hi = params.pop("date_start"), params.pop("date_end")
        assert start <= lo < hi <= end  # slices of creation days inside the configured ones
        slices.append((lo, hi))
        assert params == {"count": "7", "status": "completed", "search": "a", "sort": "user.username",
                          "direction": "desc", "includes": ",".join(sorted(REQUIRED | {"notes"}))}
    expected = [r for r in everything if r["status"] == "completed"
                and start <= r["date_created"][:10] < end
                and ("a" in r["message"]["message_tracking_number"].lower()
                     or "a" in ((r["user"] or {}).get("username") or "").lower())]
    assert expected
    assert min(lo for lo, _ in slices) == start and max(hi for _, hi in slices) == end  # every day covered
    assert len(recorder.requests) <= 3 * -(-len(expected) // 7) + 6  # modest: pages, full slices asked smaller
    stored = {r[0] for r in rows(store, "SELECT order_id FROM orders")}
    assert stored == {str(r["id"]) for r in expected}


def test_full_sync_publishes_every_order_line_payment_and_customer(shared: Running, store: Store) -> None:
    everything = fetch_all(shared)
    [result] = sync(store, "web", shared.settings())
    assert result.ok, result.error
    got = {r[0]: r for r in rows(store, "SELECT order_id, order_number, status, currency, total_minor, discount_minor,"
                                 " tax_minor, is_paid, customer_id, customer_email, created_at FROM orders")}
    assert set(got) == {str(r["id"]) for r in everything}
    for record in everything:
        p = record["pricing"]
        row = got[str(record["id"])]
        assert row[1:] == (
            record["message"]["message_tracking_number"], record["status"], "USD", p["total"],
            p["subtotal_discount"] + p["shipping_discount"], p["tax"], int(record["amount_paid"] >= p["total"]),
            str(record["user"]["id"]) if record["user"] else None, record["billing_address"]["email"],
            datetime.fromisoformat(record["date_created"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    lines = rows(store, "SELECT count(*), sum(total_minor) FROM order_lines")[0]
    assert lines == (sum(len(r["items"]) for r in everything), sum(r["pricing"]["subtotal"] for r in everything))
    payments = rows(store, "SELECT count(*), sum(amount_minor) FROM payments")[0]
    assert payments[0] == sum(len(r["payment_transactions"]) for r in everything)
    assert payments[1] == sum(r["amount_paid"] for r in everything)
    users = {r["user"]["id"] for r in everything if r["user"]}
    assert {int(r[0]) for r in rows(store, "SELECT customer_id FROM customers")} == users
    raw = json.loads(rows(store, "SELECT raw FROM orders WHERE order_id = ?", str(everything[0]["id"]))[0][0])
    assert raw == api(shared, f"/websites/4/orders/{everything[0]['id']}",
                      includes=",".join(sorted(REQUIRED))).json()


# --- the documentation's sample -------------------------------------------------------------------------
def test_sample_response_normalizes_to_expected_rows() -> None:
    body = json.loads(SAMPLE.read_text())
    assert body["meta"]["pagination"]["total_pages"] == 3
    first, second, third = (order_rows(r) for r in body["data"])
    order = first.orders[0]
    assert {k: v for k, v in order.items() if k != "raw"} == {
        "order_id": "4534", "api": "firespring", "order_number": "4534", "status": "new", "currency": "USD",
        "total_minor": 15960, "discount_minor": 3990, "tax_minor": 0, "is_paid": True, "customer_id": "11",
        "customer_name": "xyzcorp", "customer_email": None,
        "created_at": datetime(2018, 6, 1, 17, 45, 34, tzinfo=UTC), "updated_at": None,
        "lifecycle": "paid", "adjustment_minor": -3990,  # new and paid in full; the promo code's 20% off the items
    }
    assert order["raw"] is body["data"][0]
    assert first.customers == [{"customer_id": "11", "name": "xyzcorp", "email": None, "phone": None,
                                "company": None, "country": None, "created_at": None, "updated_at": None,
                                "raw": body["data"][0]["user"]}]
    assert first.order_lines == [] and first.payments == []
    o2 = second.orders[0]
    assert (o2["total_minor"], o2["discount_minor"], o2["tax_minor"], o2["is_paid"]) == (5719, 1197, 431, True)
    o3 = third.orders[0]
    assert (o3["order_id"], o3["total_minor"], o3["is_paid"], o3["customer_id"], o3["customer_name"]) == (
        "342", 1995, False, None, None)
    assert third.customers == []


# --- incremental: the look-back window ------------------------------------------------------------------
def test_lookback_window_sees_recent_changes_not_old_ones(store: Store) -> None:
    with in_process("firespring", orders=300, seed=5) as r:
        everything = fetch_all(r)
        newest = max(datetime.fromisoformat(x["date_created"]) for x in everything)
        settings = r.settings(lookback_days=30)
        [first] = sync(store, "web", settings)
        assert first.ok and first.orders.new == len(everything)

        recent = next(x for x in reversed(everything) if newest - datetime.fromisoformat(x["date_created"])
                      < timedelta(days=20) and x["status"] != "denied")
        old = next(x for x in everything if newest - datetime.fromisoformat(x["date_created"]) > timedelta(days=60)
                   and x["status"] != "denied")
        r.control("POST", "clock", {"now": (ANCHOR + timedelta(hours=2)).isoformat()})
        r.control("PATCH", f"orders/{recent['id']}", {"status": "denied"})
        r.control("PATCH", f"orders/{old['id']}", {"status": "denied"})
        created = r.control("POST", "orders", {"website_id": 4, "status": "new"})
        r.control("POST", "orders", {"website_id": 19})  # another website: never read

        recorder = Recorder()
        [second] = sync_recorded(store, "web", settings, recorder)
        assert second.ok, second.error
        window = ((newest - timedelta(days=30)).date() - timedelta(days=1)).isoformat()
        assert {p["date_start"] for p in recorder.params()} == {window}
        status = dict(rows(store, "SELECT order_id, status FROM orders"))
        assert status[str(recent["id"])] == "denied"  # inside the window: seen
        assert status[str(old["id"])] == old["status"]  # outside the window: not seen, as documented
        assert status[str(created["id"])] == "new"
        assert len(status) == len(everything) + 1
        inside = [x for x in everything if x["date_created"][:10] >= window]
        assert second.records == len(inside) + 1

        [third] = sync(store, "web", settings, full_refresh=True)
        assert third.ok
        assert dict(rows(store, "SELECT order_id, status FROM orders"))[str(old["id"])] == "denied"


def test_interrupted_run_resumes_with_the_days_not_complete(store: Store) -> None:
    """A run that fails keeps its complete creation-day slices (``run.done``); the next run asks none of them again
    (only its own look-back pass, planned once the resumed pass is over, reads recent days again)."""
    with in_process("firespring", orders=300, seed=9) as r:
        everything = fetch_all(r)
        settings = r.settings(count=10, concurrency=1)
        [broken] = sync_recorded(store, "web", settings, Recorder(fail_nth=4))
        assert not broken.ok and "crash" in (broken.error or "")
        kept = rows(store, "SELECT count(*) FROM orders")[0][0]
        assert 0 < kept < len(everything)
        state = json.loads(rows(store, "SELECT state FROM _ordersync_state")[0][0])
        done = [tuple(span) for span in state["run"]["done"]]
        assert done and state["cursor"] is None
        recorder = Recorder()
        [resumed] = sync_recorded(store, "web", settings, recorder)
        assert resumed.ok, resumed.error
        assert resumed.orders.new == len(everything) - kept and resumed.orders.changed == 0
        cursor = json.loads(rows(store, "SELECT state FROM _ordersync_state")[0][0])["cursor"]
        orders = FirespringOrders(FirespringClient("web", parse_source("web", settings)))
        lookback = orders.window_start(datetime.fromisoformat(cursor))
        assert lookback and any(date.fromordinal(lo).isoformat() < lookback for lo, _hi in done)

        def days(p: dict[str, str]) -> tuple[int, int]:
            return date.fromisoformat(p.get("date_start", "2000-01-01")).toordinal(), \
                date.fromisoformat(p["date_end"]).toordinal()

        again = [p for p in recorder.params() if any(days(p)[0] < hi and lo < days(p)[1] for lo, hi in done)]
        assert all(p.get("date_start", "") >= lookback for p in again)  # the run's own look-back pass only
        stored = rows(store, "SELECT order_id FROM orders")
        assert sorted(x[0] for x in stored) == sorted(str(x["id"]) for x in everything)


def test_orders_created_while_a_run_reads_are_stored_by_the_next_run(store: Store) -> None:
    """A run holds every order the API held when it started; one created while it reads is in the next run (and
    stored once, whichever run reads it)."""
    with in_process("firespring", orders=120, seed=4) as r:
        total = len(fetch_all(r))
        created: list[int] = []

        class Creating(Recorder):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if len(self.requests) == 2 and not created:
                    created.append(1)
                    with r.sandbox.store.lock:
                        for _ in range(25):
                            r.sandbox.create_order({"website_id": 4})
                return await super().handle_async_request(request)

        settings = r.settings(count=10, concurrency=2)
        [result] = sync_recorded(store, "web", settings, Creating())
        assert result.ok, result.error
        assert created and rows(store, "SELECT count(*) FROM orders")[0][0] >= total
        [following] = sync_recorded(store, "web", settings, Recorder())
        assert following.ok, following.error
        assert rows(store, "SELECT count(*), count(DISTINCT order_id) FROM orders") == [(total + 25, total + 25)]


def test_changing_filters_starts_over(shared: Running, store: Store) -> None:
    """Other filters: the stored state is not valid for them, so the next run reads all history again (its lowest
    slice asks no ``date_start``) up to the day it started."""
    [one] = sync(store, "web", shared.settings(status="shipped"))
    recorder = Recorder()
    [two] = sync_recorded(store, "web", shared.settings(status="completed"), recorder)
    assert one.ok and two.ok
    params = recorder.params()
    assert {p["status"] for p in params} == {"completed"}
    lowest = min(params, key=lambda p: p["date_end"])
    assert "date_start" not in lowest
    assert max(p["date_end"] for p in params) > max(r["date_created"][:10] for r in fetch_all(shared))


# --- errors and secrets ---------------------------------------------------------------------------------
def test_wrong_key_is_one_clear_line_without_the_key(store: Store) -> None:
    with in_process("firespring", orders=20, seed=2, api_key="the-real-key-9") as r:
        wrong = "wrong-secret-key-123"
        [result] = sync(store, "web", r.settings(api_key=wrong))
        assert not result.ok
        error = result.error or ""
        assert "401" in error and "The API key is invalid." in error and "api_key" in error and "\n" not in error
        encoded = base64.b64encode(f"{wrong}:".encode()).decode()
        assert wrong not in error and encoded not in error
        [good] = sync(store, "web", r.settings())
        assert good.ok
        dump = "\n".join(str(row) for table in ("orders", "customers", "_ordersync_state", "_ordersync_runs")
                         for row in rows(store, f"SELECT * FROM {table}"))
        for secret in (wrong, "the-real-key-9", encoded, base64.b64encode(b"the-real-key-9:").decode()):
            assert secret not in dump


def test_unknown_website_names_the_setting(shared: Running, store: Store) -> None:
    [result] = sync(store, "web", shared.settings(website_id=5))
    assert not result.ok
    assert "404" in (result.error or "") and "website_id" in (result.error or "")


def test_not_json_is_a_clear_error(store: Store) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>maintenance</html>"))
    settings = {"type": "firespring", "api_key": "k-123", "website_id": 4, "base_url": "http://fs.invalid"}
    [result] = asyncio.run(sync_source(store, "web", parse_source("web", settings), transport=transport))
    assert not result.ok and "not JSON" in (result.error or "")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"orders": []}))
    [result] = asyncio.run(sync_source(store, "web", parse_source("web", settings), transport=transport))
    assert not result.ok and "meta.pagination" in (result.error or "")
