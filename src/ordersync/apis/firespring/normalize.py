"""Firespring records -> published rows. How each column is derived is documented in docs/firespring.md.

Amounts are already integer cents; nested objects may arrive as ids (not included) or objects (included), so
every access checks which one it got.

Items are priced before the order's promo discount and before tax; shipping is the order's. So
``pricing.total = subtotal - subtotal_discount + tax + shipping - shipping_discount`` with ``subtotal`` the items'
sum: the order-level part (all but the subtotal) is the order's ``adjustment_minor`` (docs/lifecycle.md).
"""

from __future__ import annotations

from typing import Any

from ordersync.model import BY_PAYMENT, Record, Rows, StatusTable, lifecycle_of
from ordersync.values import as_int, cents, join_name, record_key, text, utc

STATUSES: StatusTable = {
    "pending_approval": "pending",  # the shop has not accepted it yet, paid or not
    "new": BY_PAYMENT, "processing": BY_PAYMENT, "backordered": BY_PAYMENT, "shipped": BY_PAYMENT,
    "completed": BY_PAYMENT,
    "canceled": "cancelled",
    "denied": "cancelled",  # refused by the shop: nothing was sold
}
"""The eight documented status words."""


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any) -> str | None:
    """The id of a nested object, whether it came included (an object) or not (an integer; 0 means none)."""
    if isinstance(value, dict):
        return text(value.get("id"))
    number = as_int(value)
    return str(number) if number else None


def adjustment(pricing: dict[str, Any]) -> int | None:
    """What the order adds to its items: tax and shipping, less the promo's discounts (None if one is missing)."""
    parts = [cents(pricing.get(k), f"pricing.{k}") for k in ("tax", "shipping", "subtotal_discount",
                                                               "shipping_discount")]
    if any(p is None for p in parts):
        return None
    tax, shipping, subtotal_discount, shipping_discount = (p or 0 for p in parts)
    return tax + shipping - subtotal_discount - shipping_discount


def order_rows(record: Record) -> Rows:
    order_id = record_key(record.get("id"))
    currency = (text(record.get("currency")) or "").upper() or None
    pricing = _obj(record.get("pricing"))
    billing = _obj(record.get("billing_address"))
    user = record.get("user")
    message = _obj(record.get("message"))
    total = cents(pricing.get("total"), "pricing.total")
    paid = cents(record.get("amount_paid"), "amount_paid")
    discounts = [cents(pricing.get(k), f"pricing.{k}") for k in ("subtotal_discount", "shipping_discount")]
    status = text(record.get("status"))
    is_paid = paid >= total if paid is not None and total is not None else None
    rows = Rows()
    rows.orders.append({
        "order_id": order_id,
        "api": "firespring",
        "order_number": text(message.get("message_tracking_number")) or order_id,
        "status": status,
        "currency": currency,
        "total_minor": total,
        "discount_minor": sum(d for d in discounts if d is not None) if any(d is not None for d in discounts) else None,
        "tax_minor": cents(pricing.get("tax"), "pricing.tax"),
        "is_paid": is_paid,
        "customer_id": _id(user),
        "customer_name": join_name(billing.get("first_name"), billing.get("last_name"))
        or text(billing.get("company")) or text(_obj(user).get("username")),
        "customer_email": text(billing.get("email")),
        "created_at": utc(record.get("date_created")),
        "updated_at": None,
        "raw": record,
        "lifecycle": lifecycle_of(status, is_paid, STATUSES),
        "adjustment_minor": adjustment(pricing),
    })
    for number, item in enumerate(record.get("items") or [], start=1):
        if not isinstance(item, dict):
            continue
        quantity = as_int(item.get("quantity"))
        unit = cents(item.get("price"), "items[].price")
        line_total = cents(item.get("total"), "items[].total")
        if line_total is None and unit is not None and quantity is not None:
            line_total = unit * quantity
        rows.order_lines.append({
            "order_id": order_id,
            "line_no": number,
            "line_id": text(item.get("id")),
            "product_id": text(item.get("catalog_item")) or text(item.get("sku")),
            "name": text(item.get("name")),
            "quantity": quantity,
            "unit_price_minor": unit,
            "total_minor": line_total,
            "currency": currency,
            "raw": item,
        })
    for number, payment in enumerate(record.get("payment_transactions") or [], start=1):
        if not isinstance(payment, dict):
            continue
        rows.payments.append({
            "order_id": order_id,
            "payment_no": number,
            "method": text(payment.get("payment_method")),
            "amount_minor": cents(payment.get("amount"), "payment_transactions[].amount"),
            "currency": currency,
            "raw": payment,
        })
    if isinstance(user, dict) and user.get("id") is not None:
        rows.customers.append({
            "customer_id": str(user["id"]),
            "name": join_name(billing.get("first_name"), billing.get("last_name")) or text(user.get("username")),
            "email": text(billing.get("email")),
            "phone": text(billing.get("phone")),
            "company": text(billing.get("company")),
            "country": text(billing.get("country")),
            "created_at": None,
            "updated_at": None,
            "raw": user,
        })
    return rows
