"""The documentation's two sample orders (rebuilt from the garbled page) -> the published rows; time conversion."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ordersync.apis.eguma.localtime import safe_end
from ordersync.apis.eguma.normalize import order_rows

SAMPLES = json.loads((Path(__file__).parent / "doc_samples.json").read_text(encoding="utf-8"))
ZURICH = ZoneInfo("Europe/Zurich")


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC)


def test_first_sample_order() -> None:
    rows = order_rows(SAMPLES[0], ZURICH)
    order = rows.orders[0]
    assert {k: v for k, v in order.items() if k != "raw"} == {
        "order_id": "c004033d-ded1-4b74-958f-76ef47e747d6",
        "api": "eguma",
        "order_number": "GI10023",
        "status": "completed",
        "currency": "CHF",
        "total_minor": 30000,
        "discount_minor": 0,
        "tax_minor": None,
        "is_paid": True,
        "customer_id": "4c3150ad-7117-4516-aa7c-2ca6d5c7a597",
        "customer_name": "Christoph Thomet",
        "customer_email": None,  # the sample's email is ""
        "created_at": at("2019-07-29T12:41:05"),  # 14:41:05 summer time in Zurich = UTC+2
        "updated_at": at("2019-07-29T12:41:05"),
        "lifecycle": "paid",  # completed, and its payment covers the total
        "adjustment_minor": 0,  # no discount: the lines are the total
    }
    assert order["raw"] is SAMPLES[0]
    assert [{k: v for k, v in line.items() if k != "raw"} for line in rows.order_lines] == [{
        "order_id": "c004033d-ded1-4b74-958f-76ef47e747d6", "line_no": 1, "line_id": None,
        "product_id": "13a7b4a7-2256-4f23-b690-2d562d98e171", "name": "Wertgutschein", "quantity": 3,
        "unit_price_minor": 10000, "total_minor": 30000, "currency": "CHF",
    }]
    assert [{k: v for k, v in p.items() if k != "raw"} for p in rows.payments] == [{
        "order_id": "c004033d-ded1-4b74-958f-76ef47e747d6", "payment_no": 1, "method": "Postkarte / Kreditkarte",
        "amount_minor": 30000, "currency": "CHF",
    }]
    assert [{k: v for k, v in c.items() if k != "raw"} for c in rows.customers] == [{
        "customer_id": "4c3150ad-7117-4516-aa7c-2ca6d5c7a597", "name": "Christoph Thomet", "email": None,
        "phone": "044 500 54 00", "company": "Idea Creation GmbH", "country": "CH", "created_at": None,
        "updated_at": None,
    }]
    assert rows.customers[0]["raw"] == SAMPLES[0]["customer"]


def test_second_sample_order() -> None:
    rows = order_rows(SAMPLES[1], ZURICH)
    order = rows.orders[0]
    assert order["order_number"] == "GI10024"
    assert order["total_minor"] == 50000 and order["discount_minor"] == 0 and order["is_paid"] is True
    assert order["created_at"] == at("2019-07-29T12:44:41")
    assert order["updated_at"] == at("2019-07-29T12:45:44")
    assert order["customer_name"] == "Hans Muster"
    assert rows.customers[0]["company"] is None and rows.customers[0]["phone"] is None
    assert [(p["payment_no"], p["method"], p["amount_minor"]) for p in rows.payments] == [(1, "Rechnung", 50000)]
    assert [(x["line_no"], x["name"], x["quantity"], x["unit_price_minor"]) for x in rows.order_lines] == [
        (1, "Individueller Gutschein", 1, 50000)]


def test_is_paid_compares_payments_with_the_grand_total() -> None:
    record = json.loads(json.dumps(SAMPLES[0]))
    record["payments"][0]["amount_in_cents"] = 29999
    assert order_rows(record, ZURICH).orders[0]["is_paid"] is False
    record["payments"].append({"payment_id": "6", "name": "Gratis", "amount_in_cents": 1, "is_complimentary": True})
    assert order_rows(record, ZURICH).orders[0]["is_paid"] is True
    record["payments"] = []
    assert order_rows(record, ZURICH).orders[0]["is_paid"] is False
    del record["payments"]
    assert order_rows(record, ZURICH).orders[0]["is_paid"] is None


def test_winter_time_and_the_configured_zone() -> None:
    record = {**SAMPLES[0], "created_at": "2019-12-01T10:00:00", "updated_at": "2019-12-01T10:00:00"}
    assert order_rows(record, ZURICH).orders[0]["created_at"] == at("2019-12-01T09:00:00")
    assert order_rows(record, ZoneInfo("America/New_York")).orders[0]["created_at"] == at("2019-12-01T15:00:00")


def test_ambiguous_autumn_hour_reads_as_summer_time() -> None:
    record = {**SAMPLES[0], "created_at": "2025-10-26T02:30:00", "updated_at": "2025-10-26T03:00:00"}
    order = order_rows(record, ZURICH).orders[0]
    assert order["created_at"] == at("2025-10-26T00:30:00")  # the first 02:30 (UTC+2), documented choice
    assert order["updated_at"] == at("2025-10-26T02:00:00")  # 03:00 is unambiguous winter time (UTC+1)


def test_safe_end_holds_at_the_start_of_the_repeated_hour() -> None:
    assert safe_end(at("2025-10-26T00:30:00"), ZURICH) == datetime(2025, 10, 26, 2, 0, 0)  # first 02:30
    assert safe_end(at("2025-10-26T01:30:00"), ZURICH) == datetime(2025, 10, 26, 2, 30, 0)  # second 02:30
    assert safe_end(at("2025-10-25T23:59:59"), ZURICH) == datetime(2025, 10, 26, 1, 59, 59)
    assert safe_end(at("2026-03-29T01:00:00"), ZURICH) == datetime(2026, 3, 29, 3, 0, 0)  # spring: 02:00 skipped
    assert safe_end(at("2026-06-01T10:00:00"), ZURICH) == datetime(2026, 6, 1, 12, 0, 0)
