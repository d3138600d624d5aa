"""Frontcore records -> published rows. How each column is derived is documented in the README."""

from __future__ import annotations

from typing import Any

from ordersync.model import Record, Rows
from ordersync.values import as_int, join_name, record_key, text, to_minor, utc


def order_currency(record: Record) -> str | None:
    for line in record.get("lines") or []:
        currency = line.get("currency")
        if isinstance(currency, dict) and text(currency.get("title")):
            return text(currency.get("title"))
        product = line.get("product") or {}
        if text(product.get("currency")):
            return text(product.get("currency"))
    return None


def order_rows(record: Record) -> Rows:
    order_id = record_key(record.get("id"))
    currency = order_currency(record)
    totals = record.get("calculated_totals") or {}
    customer: dict[str, Any] | None = record["customer"] if isinstance(record.get("customer"), dict) else None
    user: dict[str, Any] = record["first_user"] if isinstance(record.get("first_user"), dict) else {}
    rows = Rows()
    rows.orders.append({
        "order_id": order_id,
        "api": "frontcore",
        "order_number": order_id,
        "status": None,
        "currency": currency,
        "total_minor": to_minor(totals.get("total_amount_incl_discounts_and_vat"), currency),
        "discount_minor": to_minor(totals.get("total_amount_of_discounts"), currency),
        "tax_minor": to_minor(totals.get("total_amount_of_vat"), currency),
        "is_paid": _bool(record.get("is_paid")),
        "customer_id": str(customer["id"]) if customer and customer.get("id") is not None else None,
        "customer_name": text(customer.get("title")) if customer else join_name(user.get("firstname"),
                                                                                 user.get("lastname")),
        "customer_email": (text(customer.get("email")) if customer else None)
        or text(record.get("invoice_email")) or text(user.get("email")),
        "created_at": utc(record.get("created_at")),
        "updated_at": utc(record.get("updated_at")),
        "raw": record,
    })
    for number, line in enumerate(record.get("lines") or [], start=1):
        line_currency = (line.get("currency") or {}).get("title") or currency
        product = line.get("product") or {}
        quantity = as_int(line.get("quantity"))
        unit = to_minor(line.get("price_at_order_per_item_vat_excluded"), line_currency)
        discount = to_minor(line.get("discount_calculated_at_order"), line_currency) or 0
        rows.order_lines.append({
            "order_id": order_id,
            "line_no": number,
            "line_id": text(line.get("id")),
            "product_id": text(product.get("id")),
            "name": text(product.get("title")),
            "quantity": quantity,
            "unit_price_minor": unit,
            "total_minor": unit * quantity - discount if unit is not None and quantity is not None else None,
            "currency": line_currency,
            "raw": line,
        })
    return rows


def customer_rows(record: Record) -> Rows:
    country: dict[str, Any] = record["country"] if isinstance(record.get("country"), dict) else {}
    return Rows(customers=[{
        "customer_id": record_key(record.get("id")),
        "name": text(record.get("title")),
        "email": text(record.get("email")) or text(record.get("invoice_email")),
        "phone": text(record.get("phone")),
        "company": text(record.get("title")) if record.get("type") == "Company" else None,
        "country": text(country.get("code")),
        "created_at": utc(record.get("created_at")),
        "updated_at": utc(record.get("updated_at")),
        "raw": record,
    }])


def _bool(value: Any) -> bool | None:
    """Booleans that some accounts send as strings ("1", "true")."""
    if isinstance(value, bool) or value is None:
        return value
    return str(value).strip().lower() in ("1", "true", "yes")
