"""The documentation's own sample (placeholders and all) through normalize and the store; amounts and contacts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ordersync.apis.prio.normalize import order_rows
from ordersync.store import Store
from tests.support import rows

SAMPLE = json.loads((Path(__file__).parent / "fixtures" / "sample_response.json").read_text())
PLACEHOLDER = {"value": "<Error: Too many levels of nesting to fake this schema>"}


def test_sample_response_normalizes_without_crashing() -> None:
    items = SAMPLE["data"]["items"]
    assert len(items) == 2
    first = order_rows(items[0])
    order = first.orders[0]
    assert order["order_id"] == "ORDRREF123456" and order["order_number"] == "ORDRREF123456"
    assert order["status"] == "ORDER_CONFIRMED"
    assert order["created_at"] == datetime(1956, 8, 3, 2, 3, 45, 159000, tzinfo=UTC)
    assert order["updated_at"] == datetime(1949, 5, 25, 14, 43, 45, 736000, tzinfo=UTC)
    # placeholders and the sample's junk pricing: derived columns stay null
    for column in ("currency", "total_minor", "discount_minor", "tax_minor", "is_paid", "customer_id",
                   "customer_name", "customer_email"):
        assert order[column] is None, column
    assert order["raw"] is items[0]
    assert [line["line_no"] for line in first.order_lines] == [1, 2]
    for line in first.order_lines:
        assert line["raw"] == PLACEHOLDER
        assert all(line[c] is None for c in ("line_id", "product_id", "name", "quantity", "unit_price_minor",
                                             "total_minor", "currency"))
    assert first.customers == []  # a placeholder contact has no contact_uid to key a customer by
    assert [p["payment_no"] for p in first.payments] == [1, 2]
    assert all(p["raw"] == PLACEHOLDER and p["amount_minor"] is None and p["method"] is None for p in first.payments)


def test_sample_response_goes_into_the_store(store: Store) -> None:
    page = order_rows(SAMPLE["data"]["items"][1])
    store.write_page("sample", "prio", "orders", page, {"cursor": None})
    assert rows(store, "SELECT order_id, status, total_minor, created_at FROM orders") == [
        ("ORDRREF123456", "ORDER_CONFIRMED", None, "1975-09-18T19:06:03Z")]
    assert rows(store, "SELECT count(*) FROM order_lines") == [(2,)]
    assert rows(store, "SELECT count(*) FROM payments") == [(2,)]
    raw = json.loads(rows(store, "SELECT raw FROM orders")[0][0])
    assert raw["order_contacts"][0] == PLACEHOLDER


def real_order(**changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "order_reference": "170000100001", "order_status": "ORDER_CONFIRMED",
        "order_created": "2026-01-02T10:00:00.000Z", "order_modified": "2026-01-03T11:00:00.250Z",
        "order_pricing": {"price_currency": "EUR", "price_subtotal": "27.50", "price_discount": "2.50",
                          "price_tax_amount": "2.06", "price_total": "25.00"},
        "order_contacts": [PLACEHOLDER, {"contact_uid": "c1", "contact_name_first": "Anna",
                                         "contact_name_last": "de Vries", "contact_email": "anna@example.nl",
                                         "contact_country": "NL"}],
        "order_bookings": [
            {"booking_reference": "B1", "product_id": "40100", "product_title": "Canal Cruise",
             "product_type_details": [{"product_type_id": 1, "product_type_count": 2, "product_type_price": "10.00"}],
             "booking_pricing": {"price_currency": "EUR", "price_total": "20.00"}},
            {"booking_reference": "B2", "product_id": "40101", "product_title": "Museum",
             "product_type_details": [{"product_type_count": 1, "product_type_price": "5.00"},
                                      {"product_type_count": 1, "product_type_price": "2.50"}]},
        ],
        "order_payments": [{"payment_method": "CARD", "payment_status": "PAYMENT_CAPTURED", "payment_amount": "25.00",
                            "payment_currency": "EUR"}],
    }
    order.update(changes)
    return order


def test_real_order_rows() -> None:
    result = order_rows(real_order())
    order = result.orders[0]
    amounts = (order["currency"], order["total_minor"], order["discount_minor"], order["tax_minor"])
    assert amounts == ("EUR", 2500, 250, 206)
    assert order["is_paid"] is True
    assert (order["customer_id"], order["customer_name"], order["customer_email"]) == ("c1", "Anna de Vries",
                                                                                      "anna@example.nl")
    one, two = result.order_lines
    assert (one["line_id"], one["quantity"], one["unit_price_minor"], one["total_minor"]) == ("B1", 2, 1000, 2000)
    assert (two["line_id"], two["quantity"], two["unit_price_minor"], two["total_minor"]) == ("B2", 2, None, 750)
    assert [c["customer_id"] for c in result.customers] == ["c1"]
    assert result.payments[0]["amount_minor"] == 2500 and result.payments[0]["method"] == "CARD"


def test_unpaid_and_pending() -> None:
    assert order_rows(real_order(order_payments=[])).orders[0]["is_paid"] is False
    assert order_rows(real_order(order_payments=[PLACEHOLDER])).orders[0]["is_paid"] is None


def test_record_without_reference_is_rejected_not_silently_dropped() -> None:
    from ordersync.rejects import normalize_page

    rows, rejected = normalize_page(order_rows, [{"order_status": "ORDER_CONFIRMED"}])
    assert rows.orders == [] and len(rejected) == 1 and "no id" in rejected[0]["reason"]
