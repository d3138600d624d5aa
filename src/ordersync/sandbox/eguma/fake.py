"""e-guma-shaped data: Swiss gift-voucher orders, generated reproducibly from a seed.

Every record has every documented field, in the documented order; amounts are integer cents and add up
(``grand_total_in_cents`` = sum of line totals - ``discount_in_cents``; payments cover the grand total).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ordersync.sandbox.eguma.localtime import wall_clock
from ordersync.sandbox.fake import People, email_for, moment_between

DOMAINS = ("bluewin.ch", "gmx.ch", "sunrise.ch", "gmail.com", "hispeed.ch", "beispiel.ch")
COUNTRIES = ("CH",) * 17 + ("DE", "AT", "LI")
LANGUAGES = ("de",) * 16 + ("fr", "fr", "it", "en")
LOCATIONS = ("web",) * 15 + ("local",) * 4 + ("import",)
# (payment_id, name, is_complimentary): the sample shows "1" and "2"; the rest is an assumption.
PAYMENT_METHODS = (
    ("1", "Postkarte / Kreditkarte", False),
    ("2", "Rechnung", False),
    ("3", "Barzahlung", False),
    ("4", "TWINT", False),
    ("5", "PostFinance", False),
)
COMPLIMENTARY = ("6", "Gratis / Kulanz", True)
# (name, unit price in cents; 0 = the buyer chooses the value)
PRODUCTS = (
    ("Wertgutschein", 0),
    ("Individueller Gutschein", 0),
    ("Candle Light Dinner", 18900),
    ("Wellness-Tag", 24000),
    ("Massage 60 Minuten", 12000),
    ("Sonntagsbrunch für zwei", 9800),
    ("Übernachtung im Doppelzimmer", 32000),
    ("Fondue-Plausch", 7900),
    ("Raclette-Abend", 8500),
    ("Kochkurs", 15000),
    ("Spa-Eintritt", 4500),
    ("Apéro für zwei", 3500),
    ("Ballonfahrt", 39000),
    ("Degustationsmenü", 14500),
    ("Schifffahrt mit Mittagessen", 6900),
)
FREE_VALUES = (2000, 5000, 5000, 10000, 10000, 15000, 20000, 25000, 50000)


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    price: int


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class EgumaFaker:
    """Draws customers and orders; order numbers grow from the vendor's sample (GI10023)."""

    def __init__(self, rng: random.Random, seed: int) -> None:
        self.rng = rng
        self.people = People.make("de_CH", seed)
        self.products = [Product(new_uuid(rng), name, price) for name, price in PRODUCTS]

    def customer(self, created: datetime) -> dict[str, Any]:
        """A customer as embedded in an order; the opt-in (if any) happened before ``created``."""
        rng, p = self.rng, self.people
        title = rng.choice(("Mr", "Mrs", "Mr", "Mrs", "Company"))
        first, last = rng.choice(p.first_names), rng.choice(p.last_names)
        company = rng.choice(p.companies) if title == "Company" or rng.random() < 0.1 else ""
        marketing = rng.random() < 0.35
        opt_in = wall_clock(moment_between(rng, created - timedelta(days=700), created)) if marketing else None
        return {
            "id": new_uuid(rng),
            "title": title,
            "first_name": first,
            "last_name": last,
            "company": company,
            "street": rng.choice(p.streets),
            "zip": rng.choice(p.postcodes),
            "city": rng.choice(p.cities),
            "country": rng.choice(COUNTRIES),
            "email": email_for(rng, first, last, DOMAINS) if rng.random() < 0.9 else "",
            "accepts_marketing": marketing,
            "double_opt_in_confirmed_at": opt_in,
            "phone": rng.choice(p.phones) if rng.random() < 0.6 else "",
        }

    def line(self, product: Product | None = None, quantity: int | None = None) -> dict[str, Any]:
        rng = self.rng
        product = product or rng.choice(self.products)
        unit = product.price or rng.choice(FREE_VALUES)
        quantity = quantity or rng.choice((1, 1, 1, 1, 2, 2, 3))
        return {
            "product_id": product.id,
            "name": product.name,
            "unit_price_in_cents": unit,
            "quantity": quantity,
            "total_price_in_cents": unit * quantity,
        }

    def payments(self, total: int, location: str) -> list[dict[str, Any]]:
        rng = self.rng
        if total == 0:
            return [payment(COMPLIMENTARY, 0)]
        methods = PAYMENT_METHODS if location == "local" else PAYMENT_METHODS[:2] + PAYMENT_METHODS[3:]
        method = rng.choice(methods)
        if rng.random() < 0.04:  # part of the order given away
            free = min(total, rng.choice((1000, 2000, 5000)))
            return [payment(method, total - free), payment(COMPLIMENTARY, free)] if free < total else \
                [payment(COMPLIMENTARY, total)]
        return [payment(method, total)]

    def order(self, order_id: str, number: int, created: datetime, customer: dict[str, Any]) -> dict[str, Any]:
        """A new order (``updated_at`` = ``created_at``), in the documented field order."""
        rng = self.rng
        lines = [self.line() for _ in range(rng.choice((1, 1, 1, 1, 2, 2, 3)))]
        location = rng.choice(LOCATIONS)
        subtotal = sum(line["total_price_in_cents"] for line in lines)
        discount = 0
        if rng.random() < 0.12:
            discount = min(subtotal, rng.choice((500, 1000, 2000, subtotal // 10)))
        stamp = wall_clock(created)
        return {
            "id": order_id,
            "created_at": stamp,
            "updated_at": stamp,
            "order_number": f"GI{number}",
            "status": "completed",
            "currency": "CHF",
            "language": rng.choice(LANGUAGES),
            "location": location,
            "discount_in_cents": discount,
            "grand_total_in_cents": subtotal - discount,
            "customer": customer,
            "order_lines": lines,
            "payments": self.payments(subtotal - discount, location),
        }

    def moment(self, start: datetime, end: datetime) -> datetime:
        return moment_between(self.rng, start, end)


def payment(method: tuple[str, str, bool], amount: int) -> dict[str, Any]:
    return {"payment_id": method[0], "name": method[1], "amount_in_cents": amount, "is_complimentary": method[2]}


def recompute_total(order: dict[str, Any]) -> None:
    """Keep the documented sum true after a line was cancelled: lines - discount (never below zero)."""
    subtotal = sum(int(line["total_price_in_cents"]) for line in order["order_lines"])
    order["discount_in_cents"] = min(int(order["discount_in_cents"]), subtotal)
    order["grand_total_in_cents"] = subtotal - order["discount_in_cents"]
