"""Every generated order is one the vendor could have sent: its amounts follow the vendor's arithmetic and its
status agrees with the rest of the record (bookings, payments, confirmation and cancellation times).

Each ``*_problems`` function lists what is wrong with one order, in words, so a failure names the order and the
rule. The rules are the vendors' documented arithmetic and the sandboxes' documented choices where the vendor is
silent (each API's page, and the sandboxes' page for Prio's statuses).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from ordersync.sandbox import load_sandbox
from ordersync.sandbox.app import Sandbox, SandboxOptions
from tests.support import ANCHOR

Doc = dict[str, Any]
CENT = Decimal("0.01")
ORDERS = 400  # enough for every status of every API, cheap to generate


def dec(value: Any) -> Decimal:
    """An amount as the vendor wrote it (a number or a decimal string), exactly."""
    return Decimal(str(value))


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# --- Frontcore ----------------------------------------------------------------------------------------------
def frontcore_problems(order: Doc) -> list[str]:
    """Lines: the discount is the line's percentage of price x quantity; totals: before - discounts = after,
    the VAT is the lines' net amounts at their rates rounded once on the order, and the total is after + VAT."""
    problems = []
    before = discounts = vat = Decimal(0)
    for line in order["lines"]:
        gross = dec(line["price_at_order_per_item_vat_excluded"]) * line["quantity"]
        discount = dec(line["discount_calculated_at_order"])
        if discount != (gross * line["discount_percent_at_order"] / 100).quantize(CENT, ROUND_HALF_UP):
            problems.append(f"line {line['id']}: discount {discount} is not {line['discount_percent_at_order']}%")
        before, discounts = before + gross, discounts + discount
        vat += (gross - discount) * dec(line["product"]["vat_percentage"]) / 100
    totals = {key: dec(value) for key, value in order["calculated_totals"].items()}
    expected = {"total_amount_before_discounts": before, "total_amount_of_discounts": discounts,
                "total_amount_after_discounts": before - discounts,
                "total_amount_of_vat": vat.quantize(CENT, ROUND_HALF_UP)}
    problems += [f"{key} {totals[key]} is not {value}" for key, value in expected.items() if totals[key] != value]
    incl = totals["total_amount_after_discounts"] + totals["total_amount_of_vat"]
    if totals["total_amount_incl_discounts_and_vat"] != incl:
        problems.append(f"total {totals['total_amount_incl_discounts_and_vat']} is not after discounts + VAT {incl}")
    if not isinstance(order["is_paid"], bool):
        problems.append(f"is_paid {order['is_paid']!r}")
    return problems


# --- e-guma -------------------------------------------------------------------------------------------------
def eguma_problems(order: Doc) -> list[str]:
    """A line's total is quantity x unit price; the grand total is the lines less the discount (the sandbox has
    no shipping fee); the payments, refunds included, add up to the grand total, cancelled orders too; a
    cancellation moves ``updated_at`` (``updated_at`` = ``created_at`` only while nothing happened)."""
    problems = [f"line {line['name']}: {line['total_price_in_cents']} is not quantity x unit price"
                for line in order["order_lines"]
                if line["total_price_in_cents"] != line["quantity"] * line["unit_price_in_cents"]]
    lines = sum(line["total_price_in_cents"] for line in order["order_lines"])
    if not 0 <= order["discount_in_cents"] <= lines:
        problems.append(f"discount {order['discount_in_cents']} outside 0..{lines}")
    if order["grand_total_in_cents"] != lines - order["discount_in_cents"]:
        problems.append(f"grand total {order['grand_total_in_cents']} is not lines {lines} - discount")
    paid = sum(p["amount_in_cents"] for p in order["payments"])
    if paid != order["grand_total_in_cents"]:
        problems.append(f"payments {paid} are not the grand total {order['grand_total_in_cents']}")
    if order["status"] not in ("completed", "cancelled"):
        problems.append(f"status {order['status']!r}")
    if order["updated_at"] < order["created_at"] or (
            order["status"] == "cancelled" and order["updated_at"] == order["created_at"]):
        problems.append(f"{order['status']}, updated at {order['updated_at']}, created at {order['created_at']}")
    return problems


# --- Firespring ---------------------------------------------------------------------------------------------
FIRESPRING_STATUSES = ("pending_approval", "new", "denied", "processing", "canceled", "backordered", "shipped",
                       "completed")


def firespring_problems(order: Doc) -> list[str]:
    """An item's total is price x quantity; the subtotal is the items; the total is the subtotal less its
    discount, plus tax and shipping less its discount (as the documentation's samples add up); the promo code
    carries the order's discounts; ``amount_paid`` is what the payment transactions took, at most the total;
    an order awaiting approval or denied took nothing; a shipped or completed one has a shipment."""
    problems = [f"item {item['id']}: {item['total']} is not price x quantity" for item in order["items"]
                if item["total"] != item["price"] * item["quantity"]]
    p = order["pricing"]
    if p["subtotal"] != sum(item["total"] for item in order["items"]):
        problems.append(f"subtotal {p['subtotal']} is not the items")
    if p["total"] != p["subtotal"] - p["subtotal_discount"] + p["tax"] + p["shipping"] - p["shipping_discount"]:
        problems.append(f"total {p['total']} is not subtotal - discount + tax + shipping - shipping discount")
    if not (0 <= p["subtotal_discount"] <= p["subtotal"] and 0 <= p["shipping_discount"] <= p["shipping"]):
        problems.append("a discount larger than what it discounts")
    promo = order["promo_code"] or {"subtotal_discount": 0, "shipping_discount": 0}
    if (promo["subtotal_discount"], promo["shipping_discount"]) != (p["subtotal_discount"], p["shipping_discount"]):
        problems.append("the promo code's discounts are not the order's")
    taken = sum(t["amount"] for t in order["payment_transactions"]
                if t["status"] == "approved" and t["type"] == "charge")
    if taken != order["amount_paid"] or not 0 <= order["amount_paid"] <= p["total"]:
        problems.append(f"amount_paid {order['amount_paid']}: transactions took {taken} of {p['total']}")
    if order["status"] not in FIRESPRING_STATUSES:
        problems.append(f"status {order['status']!r}")
    if order["status"] in ("pending_approval", "denied") and order["amount_paid"]:
        problems.append(f"{order['status']} but paid")
    if order["status"] in ("shipped", "completed") and not order["shipments"]:
        problems.append(f"{order['status']} without a shipment")
    return problems


# --- Prio ---------------------------------------------------------------------------------------------------
PRIO_CAPTURED = ("PAYMENT_CAPTURED", "PAYMENT_PAID", "PAID", "CAPTURED")
PRIO_STATUSES = ("ORDER_CONFIRMED", "ORDER_PENDING", "ORDER_BLOCKED", "ORDER_PARTIALLY_CANCELLED", "ORDER_CANCELLED")


def prio_amount_problems(order: Doc) -> list[str]:
    """A product type's total is price x count, a booking's price is its product types, the order's subtotal
    its bookings; total = subtotal + price variations - discount (the promo codes'); the tax is the 9% inside
    the total; an invoice is of the total."""
    problems = []
    subtotal = Decimal(0)
    for booking in order["order_bookings"]:
        types = booking["product_type_details"]
        problems += [f"{booking['booking_reference']}: a product type's total is not price x count" for t in types
                     if dec(t["product_type_price_total"]) != dec(t["product_type_price"]) * t["product_type_count"]]
        price = booking["booking_pricing"]
        if dec(price["price_total"]) != sum((dec(t["product_type_price_total"]) for t in types), Decimal(0)):
            problems.append(f"{booking['booking_reference']}: its price is not its product types")
        subtotal += dec(price["price_total"])
    pricing = order["order_pricing"]
    variations = sum((dec(v["variation_amount"]) for v in pricing["price_variations"]), Decimal(0))
    codes = sum((dec(c["promocode_discount"]) for c in order["order_promocodes"]), Decimal(0))
    total = dec(pricing["price_total"])
    if dec(pricing["price_subtotal"]) != subtotal:
        problems.append(f"subtotal {pricing['price_subtotal']} is not the bookings' {subtotal}")
    if dec(pricing["price_discount"]) != min(codes, subtotal + variations):
        problems.append(f"discount {pricing['price_discount']} is not the promo codes' {codes}")
    if total != subtotal + variations - dec(pricing["price_discount"]):
        problems.append(f"total {total} is not subtotal + variations - discount")
    if dec(pricing["price_tax_amount"]) != (total * 9 / 109).quantize(CENT):
        problems.append(f"tax {pricing['price_tax_amount']} is not the 9% inside {total}")
    problems += [f"invoice of {i['invoice_amount']}, not of the total" for i in order["order_invoices"]
                 if dec(i["invoice_amount"]) != total]
    return problems


def prio_status_problems(order: Doc) -> list[str]:
    """What each order status means for the bookings, the payments and the order's times (docs/sandbox.md):
    confirmed: every booking confirmed, confirmed at a time, captured payments of the total; pending and blocked:
    not confirmed, nothing paid or invoiced; partially cancelled: some bookings cancelled, not all, the rest
    confirmed and paid; cancelled: every booking cancelled at a time, the payments kept as they were (the total
    if it had been confirmed, else none)."""
    status, bookings = order["order_status"], order["order_bookings"]
    cancelled = [b for b in bookings if b["booking_status"] == "BOOKING_CANCELLED"]
    captured = sum((dec(p["payment_amount"]) for p in order["order_payments"]
                    if p["payment_status"] in PRIO_CAPTURED), Decimal(0))
    total, confirmed, cancel_time = dec(order["order_pricing"]["price_total"]), order["order_confirmed"], \
        order["order_cancellation_date_time"]
    problems = []
    if status in ("ORDER_CONFIRMED", "ORDER_PARTIALLY_CANCELLED") and (not confirmed or captured != total):
        problems.append(f"{status}: confirmed {confirmed}, captured {captured} of {total}")
    if status == "ORDER_CONFIRMED" and (cancelled or cancel_time):
        problems.append("confirmed with cancelled bookings or a cancellation time")
    if status in ("ORDER_PENDING", "ORDER_BLOCKED") and (
            confirmed or cancelled or cancel_time or order["order_payments"] or order["order_invoices"]):
        problems.append(f"{status}: confirmed, cancelled, paid or invoiced")
    if status == "ORDER_PARTIALLY_CANCELLED" and not 0 < len(cancelled) < len(bookings):
        problems.append(f"partially cancelled: {len(cancelled)} of {len(bookings)} bookings cancelled")
    if status == "ORDER_CANCELLED":
        if len(cancelled) != len(bookings) or not cancel_time:
            problems.append(f"cancelled: {len(cancelled)} of {len(bookings)} bookings cancelled, at {cancel_time}")
        if captured != (total if confirmed else 0):
            problems.append(f"cancelled: captured {captured}, confirmed {confirmed}")
    if status not in PRIO_STATUSES:
        problems.append(f"status {status!r}")
    created, modified = when(order["order_created"]), when(order["order_modified"])
    times = [when(t) for t in (confirmed, cancel_time) if t]
    if modified < created or any(not created <= t <= modified for t in times):
        problems.append("its times are not between its creation and its last modification")
    return problems


def prio_problems(order: Doc) -> list[str]:
    return prio_amount_problems(order) + prio_status_problems(order)


# Per API: the check of one order, the field of its status word and every word the generator makes.
CHECKS: dict[str, tuple[Callable[[Doc], list[str]], str, tuple[str, ...]]] = {
    "frontcore": (frontcore_problems, "", ()),
    "eguma": (eguma_problems, "status", ("completed", "cancelled")),
    "firespring": (firespring_problems, "status", FIRESPRING_STATUSES),
    "prio": (prio_problems, "order_status", PRIO_STATUSES),
}


def generated(api: str, orders: int = ORDERS, seed: int = 1) -> tuple[Sandbox, list[Doc]]:
    sandbox = load_sandbox(api, SandboxOptions(orders=orders, seed=seed, anchor=ANCHOR))
    return sandbox, sandbox.store.find("orders")


def inconsistent(api: str, orders: list[Doc]) -> dict[str, list[str]]:
    """Each order that breaks a rule, by id, with the rules it breaks."""
    check = CHECKS[api][0]
    found = {str(order.get("order_reference", order.get("id"))): check(order) for order in orders}
    return {key: problems for key, problems in found.items() if problems}


@pytest.mark.parametrize("api", sorted(CHECKS))
def test_every_generated_order_follows_the_vendors_arithmetic_and_status_rules(api: str) -> None:
    sandbox, orders = generated(api)
    assert len(orders) == ORDERS
    assert inconsistent(api, orders) == {}
    _, status_key, statuses = CHECKS[api]
    if status_key:  # every status occurred, so every status rule was exercised
        assert Counter(order[status_key] for order in orders).keys() == set(statuses)
    sandbox.close()


@pytest.mark.parametrize("api", sorted(CHECKS))
def test_orders_stay_consistent_while_the_live_shop_sells(api: str) -> None:
    """The live shop's creations, payments, changes and cancellations (each through the sandbox's control
    operations) leave every order consistent: a Prio order paid later is confirmed and captured, for one."""
    sandbox, _ = generated(api, orders=60)
    rng = random.Random(5)
    kinds = ["create", "pay", "change", "cancel"]
    for minute in range(1, 301):
        sandbox.hold_clock(ANCHOR + timedelta(minutes=minute))
        sandbox.live_event(rng, kinds[minute % 4] if minute % 8 else "create")
    assert inconsistent(api, sandbox.store.find("orders")) == {}
    sandbox.close()
