"""Revenue that means sold (issue 27 part 3): one query counts orders by lifecycle and revenue per source and
currency, per day, month or any period of a time zone, on SQLite and DuckDB (PostgreSQL: tests/test_report.py).
Hand-made orders whose every figure is known: cancelled ones apart, a partially cancelled one counted only when
paid, an unknown lifecycle counted nowhere, money paid back, a tax not stated, and orders either side of midnight
in Oslo."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ordersync import revenue
from ordersync.apis.base import Rows
from ordersync.revenue import Figures, Period
from ordersync.store import Store, open_store

OSLO = ZoneInfo("Europe/Oslo")


def _order(source: str, order_id: str, lifecycle: str | None, paid: bool, total: int, currency: str,
           created: str, tax: int | None = 0) -> dict[str, Any]:
    return {"order_id": order_id, "api": "frontcore", "order_number": f"N-{order_id}", "status": lifecycle,
            "currency": currency, "total_minor": total, "discount_minor": 0, "tax_minor": tax, "is_paid": paid,
            "customer_id": None, "customer_name": "Kari", "customer_email": "kari@example.org",
            "created_at": datetime.fromisoformat(created), "updated_at": None, "raw": {"id": order_id},
            "lifecycle": lifecycle, "adjustment_minor": 0}


def _payment(order_id: str, number: int, amount: int, currency: str) -> dict[str, Any]:
    return {"order_id": order_id, "payment_no": number, "method": "card", "amount_minor": amount,
            "currency": currency, "raw": {}}


ORDERS = {
    "shop": [  # NOK; a3 and a4 lie either side of a month's end in Oslo
        _order("shop", "a1", "paid", True, 125050, "NOK", "2026-11-03T10:00:00+00:00", tax=25010),
        _order("shop", "a2", "pending", False, 5000, "NOK", "2026-11-04T10:00:00+00:00"),
        _order("shop", "a3", "paid", True, 10000, "NOK", "2026-10-31T23:30:00+00:00", tax=2000),  # Oslo: 1 Nov
        _order("shop", "a4", "paid", True, 7000, "NOK", "2026-11-30T23:30:00+00:00", tax=1400),  # Oslo: 1 Dec
    ],
    "tickets": [  # EUR
        _order("tickets", "b1", "cancelled", True, 4000, "EUR", "2026-11-05T10:00:00+00:00"),
        _order("tickets", "b2", "partially_cancelled", True, 3000, "EUR", "2026-11-05T11:00:00+00:00", tax=None),
        _order("tickets", "b3", "partially_cancelled", False, 2500, "EUR", "2026-11-05T12:00:00+00:00"),
        _order("tickets", "b4", None, True, 900, "EUR", "2026-11-06T12:00:00+00:00"),
        _order("tickets", "b5", "paid", True, 1000, "EUR", "2026-11-06T13:00:00+00:00", tax=None),
    ],
    "vouchers": [  # CHF: a line cancelled and paid back; a cancelled order's money paid back is no revenue's
        _order("vouchers", "c1", "paid", True, 3500, "CHF", "2026-11-07T10:00:00+00:00", tax=None),
        _order("vouchers", "c2", "cancelled", True, 72000, "CHF", "2026-11-07T11:00:00+00:00", tax=None),
    ],
    "yen": [_order("yen", "d1", "paid", True, 1500, "JPY", "2026-11-08T10:00:00+00:00")],
}
PAYMENTS = {"vouchers": [_payment("c1", 1, 12500, "CHF"), _payment("c1", 2, -9000, "CHF"),
                         _payment("c2", 1, 72000, "CHF"), _payment("c2", 2, -72000, "CHF")]}


def fill(store: Store) -> None:
    for source, rows in ORDERS.items():
        store.write_page(source, "frontcore", "orders", Rows(orders=rows, payments=PAYMENTS.get(source, [])),  # type: ignore[arg-type]
                         {"max_id": 1})


@pytest.fixture(params=["sqlite", "duckdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"{request.param}:///{tmp_path / ('o.db' if request.param == 'sqlite' else 'o.duckdb')}")
    fill(opened)
    yield opened
    opened.close()


def figures(store: Store, periods: list[Period]) -> dict[tuple[str, str], Figures]:
    with store.engine.connect() as conn:
        return {(f.period, f.source): f for f in revenue.figures(conn, periods)}


def test_revenue_counts_sold_orders_and_shows_cancelled_ones_apart(store: Store) -> None:
    found = figures(store, [revenue.month(2026, 11)])
    shop, tickets = found[("2026-11", "shop")], found[("2026-11", "tickets")]
    vouchers, yen = found[("2026-11", "vouchers")], found[("2026-11", "yen")]
    assert (shop.orders, shop.paid, shop.pending, shop.sold) == (3, 2, 1, 2)  # a1, a2, a4 (a3 is October in UTC)
    assert (shop.net_minor, shop.gross_minor, shop.tax_minor, shop.pending_minor) == (132050, 132050, 26410, 5000)
    assert (tickets.orders, tickets.cancelled, tickets.partially_cancelled, tickets.unknown) == (5, 1, 2, 1)
    assert tickets.sold == 2 and tickets.net_minor == 3000 + 1000  # b2 (paid) and b5; not b3 (unpaid) nor b4
    assert tickets.cancelled_minor == 4000 and tickets.tax_minor is None  # b2 and b5 state no tax
    assert (vouchers.net_minor, vouchers.refunds_minor, vouchers.gross_minor) == (3500, 9000, 12500)
    assert (vouchers.cancelled, vouchers.cancelled_minor) == (1, 72000)  # c2's refund is not c1's revenue's
    assert (yen.currency, yen.net_minor, str(revenue.major(yen.net_minor, yen.currency))) == ("JPY", 1500, "1500")
    assert str(revenue.major(shop.net_minor, "NOK")) == "1320.50" and revenue.shown(shop.net_minor, "NOK") == "1,320.50"


def test_a_zone_decides_which_month_an_order_belongs_to(store: Store) -> None:
    utc = figures(store, revenue.months(date(2026, 10, 1), date(2026, 12, 1)))
    oslo = figures(store, revenue.months(date(2026, 10, 1), date(2026, 12, 1), OSLO))
    assert utc[("2026-10", "shop")].net_minor == 10000 and ("2026-12", "shop") not in utc
    assert oslo[("2026-11", "shop")].net_minor == 125050 + 10000 and ("2026-10", "shop") not in oslo
    assert oslo[("2026-12", "shop")].net_minor == 7000
    assert sum(f.orders for f in utc.values()) == sum(f.orders for f in oslo.values()) == 12  # each once


def test_days_add_up_to_their_range(store: Store) -> None:
    days = revenue.days(date(2026, 10, 25), date(2026, 12, 5), OSLO)
    with store.engine.connect() as conn:
        by_day = revenue.figures(conn, days)
        whole = revenue.figures(conn, [Period("range", days[0].start, days[-1].end)])
    assert len({f.period for f in by_day}) > 5
    assert [(f.source, f.currency, vars(f) | {"period": ""}) for f in revenue.combine(by_day, "x")] == \
        [(f.source, f.currency, vars(f) | {"period": ""}) for f in whole]
    with store.engine.connect() as conn:
        by_source = {f.source: f for f in revenue.figures(conn, [Period("all")])}
    assert by_source["shop"].orders == 4 and by_source["shop"].net_minor == 142050


def test_days_and_months_follow_the_zone_across_clock_changes() -> None:
    spring = revenue.days(date(2026, 3, 28), date(2026, 3, 30), OSLO)  # clocks go forward on 29 March
    assert [p.label for p in spring] == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert [(p.end - p.start) for p in spring if p.start and p.end] == [timedelta(hours=24), timedelta(hours=23),
                                                                         timedelta(hours=24)]
    assert all(a.end == b.start for a, b in zip(spring, spring[1:], strict=False))
    november = revenue.month(2026, 11, OSLO)
    assert (november.start, november.end) == (datetime(2026, 10, 31, 23, tzinfo=UTC),
                                              datetime(2026, 11, 30, 23, tzinfo=UTC))
    assert [p.label for p in revenue.months(date(2025, 11, 20), date(2026, 2, 1))] == [
        "2025-11", "2025-12", "2026-01", "2026-02"]
    assert revenue.last_complete_month(OSLO, datetime(2026, 12, 31, 23, 30, tzinfo=UTC)).label == "2026-12"
    assert revenue.last_complete_month(UTC, datetime(2026, 1, 15, tzinfo=UTC)).label == "2025-12"
    assert revenue.parse_month("2026-11", OSLO) == november
    for wrong in ("2026-13", "2026-1", "11-2026", "", "0000-01"):
        with pytest.raises(ValueError, match="is not a month; write YYYY-MM"):
            revenue.parse_month(wrong)
