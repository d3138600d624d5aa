"""e-guma records -> published rows. How each column is derived is documented in docs/eguma.md; the lifecycle
and the amounts' meaning in docs/lifecycle.md.

Timestamps have no zone: they are read as wall-clock time of the source's ``timezone`` and converted to UTC.
In the autumn hour that occurs twice the earlier reading (summer time) is taken, since the record cannot say.

The grand total is the lines' sum minus the order's discount (``discount_in_cents``), which no line holds: it is
the order's ``adjustment_minor``. A cancelled voucher line leaves no mark in the record but a lower total, so an
order is ``cancelled`` or not, never ``partially_cancelled``.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from ordersync.model import BY_PAYMENT, Record, Rows, StatusTable, lifecycle_of
from ordersync.values import as_int, cents, join_name, record_key, text, utc

STATUSES: StatusTable = {"completed": BY_PAYMENT, "cancelled": "cancelled"}
"""The two documented words: a completed order is ``paid`` once its payments cover it, else ``pending``."""

DEFAULT_ZONE = ZoneInfo("Europe/Zurich")


def is_paid(record: Record) -> bool | None:
    """True when the payments (complimentary ones included) cover the grand total; None without payments data."""
    payments = record.get("payments")
    total = cents(record.get("grand_total_in_cents"), "grand_total_in_cents")
    if not isinstance(payments, list) or total is None:
        return None
    paid = sum(cents(p.get("amount_in_cents"), "payments[].amount_in_cents") or 0
               for p in payments if isinstance(p, dict))
    return bool(payments) and paid >= total


def customer_name(customer: dict[str, Any]) -> str | None:
    return join_name(customer.get("first_name"), customer.get("last_name")) or text(customer.get("company"))


def order_rows(record: Record, zone: ZoneInfo = DEFAULT_ZONE) -> Rows:
    """The rows of one order; ``zone`` reads its zone-less times (the source's ``timezone``)."""
    order_id = record_key(record.get("id"))
    currency = text(record.get("currency"))
    customer = record.get("customer") if isinstance(record.get("customer"), dict) else None
    customer_id = text(customer.get("id")) if customer else None
    status = text(record.get("status"))
    paid = is_paid(record)
    discount = cents(record.get("discount_in_cents"), "discount_in_cents")
    rows = Rows()
    rows.orders.append({
        "order_id": order_id,
        "api": "eguma",
        "order_number": text(record.get("order_number")),
        "status": status,
        "currency": currency,
        "total_minor": cents(record.get("grand_total_in_cents"), "grand_total_in_cents"),
        "discount_minor": discount,
        "tax_minor": None,
        "is_paid": paid,
        "customer_id": customer_id,
        "customer_name": customer_name(customer) if customer else None,
        "customer_email": text(customer.get("email")) if customer else None,
        "created_at": utc(record.get("created_at"), zone),
        "updated_at": utc(record.get("updated_at"), zone),
        "raw": record,
        "lifecycle": lifecycle_of(status, paid, STATUSES),
        "adjustment_minor": -discount if discount is not None else None,
    })
    for number, line in enumerate(record.get("order_lines") or [], start=1):
        if not isinstance(line, dict):
            continue
        rows.order_lines.append({
            "order_id": order_id,
            "line_no": number,
            "line_id": None,
            "product_id": text(line.get("product_id")),
            "name": text(line.get("name")),
            "quantity": as_int(line.get("quantity")),
            "unit_price_minor": cents(line.get("unit_price_in_cents"), "order_lines[].unit_price_in_cents"),
            "total_minor": cents(line.get("total_price_in_cents"), "order_lines[].total_price_in_cents"),
            "currency": currency,
            "raw": line,
        })
    for number, payment in enumerate(record.get("payments") or [], start=1):
        if not isinstance(payment, dict):
            continue
        rows.payments.append({
            "order_id": order_id,
            "payment_no": number,
            "method": text(payment.get("name")) or text(payment.get("payment_id")),
            "amount_minor": cents(payment.get("amount_in_cents"), "payments[].amount_in_cents"),
            "currency": currency,
            "raw": payment,
        })
    if customer and customer_id:
        rows.customers.append({
            "customer_id": customer_id,
            "name": customer_name(customer),
            "email": text(customer.get("email")),
            "phone": text(customer.get("phone")),
            "company": text(customer.get("company")),
            "country": text(customer.get("country")),
            "created_at": None,
            "updated_at": None,
            "raw": customer,
        })
    return rows
