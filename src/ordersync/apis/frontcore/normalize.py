"""Frontcore records -> published rows. How each column is derived is documented in docs/frontcore.md; the
lifecycle, the amounts' meaning and the payments in docs/lifecycle.md.

Frontcore prices lines without VAT (``price_at_order_per_item_vat_excluded``) and gives each line's VAT rate
(``product.vat_percentage``), while the order's total includes VAT: a line's ``total_minor`` is its amount after
its discount *with* its VAT, so that the lines add up to the order's total. Frontcore has no status word and no
cancellation: ``is_paid`` alone decides the lifecycle.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ordersync.model import BY_PAYMENT, OrderLineRow, PaymentRow, Record, Rows, StatusTable, lifecycle_of
from ordersync.values import as_int, join_name, record_key, text, to_minor, utc

STATUSES: StatusTable = {None: BY_PAYMENT}
"""No status word: every order stands; ``is_paid`` says whether it is ``paid`` or ``pending``."""


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
    total = to_minor(totals.get("total_amount_incl_discounts_and_vat"), currency)
    paid = _bool(record.get("is_paid"))
    rows = Rows()
    rows.orders.append({
        "order_id": order_id,
        "api": "frontcore",
        "order_number": order_id,
        "status": None,
        "currency": currency,
        "total_minor": total,
        "discount_minor": to_minor(totals.get("total_amount_of_discounts"), currency),
        "tax_minor": to_minor(totals.get("total_amount_of_vat"), currency),
        "is_paid": paid,
        "customer_id": str(customer["id"]) if customer and customer.get("id") is not None else None,
        "customer_name": text(customer.get("title")) if customer else join_name(user.get("firstname"),
                                                                                 user.get("lastname")),
        "customer_email": (text(customer.get("email")) if customer else None)
        or text(record.get("invoice_email")) or text(user.get("email")),
        "created_at": utc(record.get("created_at")),
        "updated_at": utc(record.get("updated_at")),
        "raw": record,
        "lifecycle": lifecycle_of(None, paid, STATUSES),
        "adjustment_minor": 0,  # every amount of a Frontcore order belongs to a line
    })
    rows.order_lines += line_rows(order_id, record.get("lines") or [], currency, total,
                                  to_minor(totals.get("total_amount_of_vat"), currency))
    if paid:
        rows.payments.append(payment_row(order_id, record, total, currency))
    return rows


def line_rows(order_id: str, lines: list[Any], currency: str | None, total: int | None,
              order_vat: int | None) -> list[OrderLineRow]:
    """The lines, each ``total_minor`` = unit x quantity - discount + its VAT (see :func:`spread_vat`)."""
    rows: list[OrderLineRow] = []
    nets: list[int | None] = []
    rates: list[Decimal | None] = []
    for number, line in enumerate(lines, start=1):
        line_currency = (line.get("currency") or {}).get("title") or currency
        product = line.get("product") or {}
        quantity = as_int(line.get("quantity"))
        unit = to_minor(line.get("price_at_order_per_item_vat_excluded"), line_currency)
        discount = to_minor(line.get("discount_calculated_at_order"), line_currency) or 0
        nets.append(unit * quantity - discount if unit is not None and quantity is not None else None)
        rates.append(vat_rate(product.get("vat_percentage")))
        rows.append({
            "order_id": order_id,
            "line_no": number,
            "line_id": text(line.get("id")),
            "product_id": text(product.get("id")),
            "name": text(product.get("title")),
            "quantity": quantity,
            "unit_price_minor": unit,
            "total_minor": None,
            "currency": line_currency,
            "raw": line,
        })
    implied = total - sum(n or 0 for n in nets) if total is not None and None not in nets else None
    for row, net, vat in zip(rows, nets, spread_vat(nets, rates, [implied, order_vat]), strict=True):
        row["total_minor"] = net + vat if net is not None and vat is not None else None
    return rows


def vat_rate(value: Any) -> Decimal | None:
    """``product.vat_percentage`` (25, "25", 12.5) as a number; None when absent. Not a number: ``ValueError``
    (the record is rejected, as for an amount that is not one)."""
    if value is None or value == "":
        return None
    try:
        rate = Decimal(str(value).strip()) if not isinstance(value, bool | dict | list) else Decimal("nan")
    except InvalidOperation:
        rate = Decimal("nan")
    if not rate.is_finite() or not 0 <= rate <= 100:
        raise ValueError(f"the VAT percentage {str(value)[:20]!r} is not a percentage")
    return rate


def spread_vat(nets: list[int | None], rates: list[Decimal | None], targets: list[int | None]) -> list[int | None]:
    """Each line's VAT in minor units: ``net x rate``, rounded so that the lines' VAT adds up to the first of
    ``targets`` that is their exact sum rounded (less than one minor unit away): the VAT the order's total implies
    (its total less the lines' net amounts), else the order's own VAT figure. Frontcore rounds VAT on the order, not
    per line (two lines of 0.5 øre VAT make 1 øre, not 0 or 2), and rounds its total and its VAT figure each on
    its own; the units left go to the lines with the largest fractions. With no such target (or a line's net or
    rate unknown) each line is rounded on its own, half up."""
    exact = [Decimal(n) * r / 100 if n is not None and r is not None else None
             for n, r in zip(nets, rates, strict=True)]
    known = [e for e in exact if e is not None]
    target = next((t for t in targets if t is not None and abs(t - sum(known, Decimal(0))) < 1), None)
    if target is None or len(known) < len(exact):
        return [int(e.to_integral_value(ROUND_HALF_UP)) if e is not None else None for e in exact]
    floors = [int(e.to_integral_value(ROUND_FLOOR)) for e in known]
    by_fraction = sorted(range(len(known)), key=lambda i: known[i] - floors[i], reverse=True)
    for index in by_fraction[:target - sum(floors)]:  # between 0 and len(known): the target is within 1 of the sum
        floors[index] += 1
    return list(floors)


def payment_row(order_id: str, record: Record, total: int | None, currency: str | None) -> PaymentRow:
    """Frontcore has no payment records: a paid order (``is_paid``) gets one payment of its total, by its
    ``payment_method``; ``raw`` holds the two vendor fields it comes from, as received."""
    return {
        "order_id": order_id,
        "payment_no": 1,
        "method": text(record.get("payment_method")),
        "amount_minor": total,
        "currency": currency,
        "raw": {"is_paid": record.get("is_paid"), "payment_method": record.get("payment_method")},
    }


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
