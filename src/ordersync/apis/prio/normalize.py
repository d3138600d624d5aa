"""Prio order records -> published rows (orders, order_lines, customers, payments).

Prio's documentation shows placeholders (``{"value": "<Error: ...>"}``) where objects belong; every nested value
is therefore checked before use: a placeholder or any other unexpected shape is kept in ``raw`` and leaves the
derived columns null, it never fails a sync.

Amounts include tax. A booking's price is its line; the order's price variations (surcharges such as "Peak
Hour") and its discount belong to no booking: ``price_total`` = the bookings' sum + variations - discount, and
variations - discount is the order's ``adjustment_minor`` (docs/lifecycle.md).
"""

from __future__ import annotations

from typing import Any

from ordersync.model import BY_PAYMENT, OrderLineRow, Record, Rows, StatusTable, lifecycle_of
from ordersync.values import as_int, join_name, record_key, text, to_minor, utc

PAID_STATUSES = frozenset({"PAYMENT_CAPTURED", "PAYMENT_PAID", "PAID", "CAPTURED"})

STATUSES: StatusTable = {
    "ORDER_CONFIRMED": BY_PAYMENT,  # the one documented word; the others are the vendor's, not in its page
    "ORDER_PENDING": "pending",
    "ORDER_BLOCKED": "pending",  # held, not confirmed: not a sale yet, whatever was paid
    "ORDER_PARTIALLY_CANCELLED": "partially_cancelled",
    "ORDER_CANCELLED": "cancelled",
}


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a real object, else an empty one (placeholders included)."""
    if isinstance(value, dict) and (len(value) != 1 or not is_placeholder(value)):  # a placeholder has one key
        return value
    return {}


def is_placeholder(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("value"), str) \
        and value["value"].startswith("<")


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def order_currency(record: Record) -> str | None:
    """The order's currency: from ``order_pricing``, else from the first booking's pricing."""
    currency = text(obj(record.get("order_pricing")).get("price_currency"))
    if currency:
        return currency
    for booking in items(record.get("order_bookings")):
        found = text(obj(obj(booking).get("booking_pricing")).get("price_currency"))
        if found:
            return found
    return None


def first_contact(record: Record) -> dict[str, Any]:
    for contact in items(record.get("order_contacts")):
        if obj(contact).get("contact_uid") is not None:
            return obj(contact)
    return {}


def is_paid(record: Record, total: int | None, currency: str | None) -> bool | None:
    """True once captured payments cover the total; None when the payments are unknown (placeholders)."""
    payments = items(record.get("order_payments"))
    real = [obj(p) for p in payments if obj(p)]
    if payments and not real:
        return None
    paid = sum(to_minor(p.get("payment_amount"), text(p.get("payment_currency")) or currency) or 0
               for p in real if str(p.get("payment_status", "")).upper() in PAID_STATUSES)
    if total is None:
        return paid > 0 if real else None
    return paid >= total and (total > 0 or bool(real))


def adjustment(pricing: dict[str, Any], currency: str | None) -> int | None:
    """The price variations less the discount; None when the pricing (or a variation) is a placeholder."""
    variations = [obj(v) for v in items(pricing.get("price_variations"))]
    if not pricing or not all(variations):
        return None
    amounts = [to_minor(v.get("variation_amount"), currency) for v in variations]
    return sum(a or 0 for a in amounts) - (to_minor(pricing.get("price_discount"), currency) or 0)


def order_rows(record: Record) -> Rows:
    rows = Rows()
    order_id = record_key(record.get("order_reference"))
    currency = order_currency(record)
    pricing = obj(record.get("order_pricing"))
    contact = first_contact(record)
    total = to_minor(pricing.get("price_total"), currency)
    status = text(record.get("order_status"))
    paid = is_paid(record, total, currency)
    rows.orders.append({
        "order_id": order_id,
        "api": "prio",
        "order_number": order_id,
        "status": status,
        "currency": currency,
        "total_minor": total,
        "discount_minor": to_minor(pricing.get("price_discount"), currency),
        "tax_minor": to_minor(pricing.get("price_tax_amount"), currency),
        "is_paid": paid,
        "customer_id": text(contact.get("contact_uid")),
        "customer_name": join_name(contact.get("contact_name_first"), contact.get("contact_name_last")),
        "customer_email": text(contact.get("contact_email")),
        "created_at": utc(record.get("order_created")),
        "updated_at": utc(record.get("order_modified")),
        "raw": record,
        "lifecycle": lifecycle_of(status, paid, STATUSES),
        "adjustment_minor": adjustment(pricing, currency),
    })
    for number, booking in enumerate(items(record.get("order_bookings")), start=1):
        rows.order_lines.append(line_row(order_id, number, booking, currency))
    for contact_value in items(record.get("order_contacts")):
        contact_obj = obj(contact_value)
        uid = text(contact_obj.get("contact_uid"))
        if uid is None:
            continue
        rows.customers.append({
            "customer_id": uid,
            "name": join_name(contact_obj.get("contact_name_first"), contact_obj.get("contact_name_last")),
            "email": text(contact_obj.get("contact_email")),
            "phone": text(contact_obj.get("contact_phone")),
            "company": text(contact_obj.get("contact_company")),
            "country": text(contact_obj.get("contact_country")),
            "created_at": None,
            "updated_at": None,
            "raw": contact_value,
        })
    for number, payment in enumerate(items(record.get("order_payments")), start=1):
        payment_obj = obj(payment)
        pay_currency = text(payment_obj.get("payment_currency")) or (currency if payment_obj else None)
        rows.payments.append({
            "order_id": order_id,
            "payment_no": number,
            "method": text(payment_obj.get("payment_method")),
            "amount_minor": to_minor(payment_obj.get("payment_amount"), pay_currency),
            "currency": pay_currency,
            "raw": payment,
        })
    return rows


def line_row(order_id: str, number: int, booking: Any, order_currency_code: str | None) -> OrderLineRow:
    """One line per booking: quantity is the sum of its product types; a unit price only when it has one type."""
    b = obj(booking)
    pricing = obj(b.get("booking_pricing"))
    currency = text(pricing.get("price_currency")) or (order_currency_code if b else None)
    types = [obj(t) for t in items(b.get("product_type_details")) if obj(t)]
    counts = [as_int(t.get("product_type_count")) for t in types]
    quantity = sum(c for c in counts if c is not None) if types and None not in counts else None
    unit = to_minor(types[0].get("product_type_price"), currency) if len(types) == 1 else None
    total = to_minor(pricing.get("price_total"), currency)
    if total is None and types:
        amounts = [to_minor(t.get("product_type_price"), currency) for t in types]
        if None not in amounts and None not in counts:
            total = sum((a or 0) * (c or 0) for a, c in zip(amounts, counts, strict=True))
    return {
        "order_id": order_id,
        "line_no": number,
        "line_id": text(b.get("booking_reference")),
        "product_id": text(b.get("product_id")),
        "name": text(b.get("product_title")),
        "quantity": quantity,
        "unit_price_minor": unit,
        "total_minor": total,
        "currency": currency,
        "raw": booking,
    }
