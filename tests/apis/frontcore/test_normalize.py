"""The documentation's own sample responses, parsed verbatim, give the published rows the README promises."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ordersync.apis.frontcore.normalize import customer_rows, order_rows

FIXTURES = Path(__file__).parent / "fixtures"


def test_sample_orders_become_orders_and_lines() -> None:
    company, private = json.loads((FIXTURES / "orders_sample.json").read_text())
    rows = order_rows(company)
    order = rows.orders[0]
    assert order["order_id"] == "27244" and order["api"] == "frontcore"
    assert order["currency"] == "NOK"
    assert order["total_minor"] == 150000 and order["discount_minor"] == 0 and order["tax_minor"] == 0
    assert order["is_paid"] is True
    assert order["customer_id"] == "32714" and order["customer_name"] == "Beste Kunde AS"
    assert order["customer_email"] == "lars@eksemel.ek"  # the customer has none: the invoice e-mail
    assert order["created_at"] == datetime(2017, 3, 31, 18, 27, 4, tzinfo=UTC)
    assert order["updated_at"] == datetime(2026, 1, 23, 2, 34, 44, tzinfo=UTC)
    assert order["raw"] is company
    [line] = rows.order_lines
    assert line == {**line, "order_id": "27244", "line_no": 1, "line_id": "31400", "product_id": "8079",
                    "name": "Learn REST API", "quantity": 1, "unit_price_minor": 150000, "total_minor": 150000,
                    "currency": "NOK"}

    new = order_rows(private).orders[0]
    assert new["updated_at"] is None and new["customer_id"] is None
    assert new["customer_name"] == "Pål Pålsen" and new["customer_email"] == "eksempel@spinnerlabs.no"
    assert new["is_paid"] is False


def test_sample_customers_become_customers() -> None:
    customers = json.loads((FIXTURES / "customers_sample.json").read_text())
    rows = [customer_rows(c).customers[0] for c in customers]
    assert [r["customer_id"] for r in rows] == ["64925", "64926", "32714"]
    company = rows[2]
    assert company["name"] == company["company"] == "Beste Kunde AS" and company["country"] == "NO"
    assert company["email"] is None and company["phone"] is None
    assert rows[0]["company"] is None and rows[0]["country"] == "SE" and rows[0]["email"] == "4"
    assert rows[0]["updated_at"] == datetime(2026, 4, 9, 6, 24, 46, tzinfo=UTC)


def test_amounts_with_decimals_and_ids_as_strings() -> None:
    company = json.loads((FIXTURES / "orders_sample.json").read_text())[0]
    company["calculated_totals"]["total_amount_incl_discounts_and_vat"] = 1875.5
    company["is_paid"] = "1"
    company["lines"][0]["price_at_order_per_item_vat_excluded"] = "750.25"
    company["lines"][0]["quantity"] = "2"
    rows = order_rows(company)
    assert rows.orders[0]["total_minor"] == 187550 and rows.orders[0]["is_paid"] is True
    assert rows.order_lines[0]["unit_price_minor"] == 75025 and rows.order_lines[0]["total_minor"] == 150050
