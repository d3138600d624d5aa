"""Firespring-shaped data: US nonprofit web-store orders, generated reproducibly from a seed.

Each order is generated and kept *fully expanded* (every include present, nested objects as objects); the
sandbox strips and collapses it per request, as the ``includes`` parameter says.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ordersync.sandbox.fake import People, email_for, moment_between

WEBSITES = (4, 19, 27)  # 4 is the sample's website
STATUSES = ("pending_approval", "new", "denied", "processing", "canceled", "backordered", "shipped", "completed")
DOMAINS = ("example.org", "gmail.com", "yahoo.com", "outlook.com", "charity.org")
PRODUCTS = (
    ("Annual Report (print)", 1995), ("Gala Ticket", 7500), ("Volunteer T-Shirt", 1800), ("Coffee Mug", 1200),
    ("Tote Bag", 1500), ("Cookbook", 2495), ("Event Poster", 995), ("Membership Kit", 4000), ("Calendar", 1495),
    ("Brochure Pack (100)", 3990), ("Logo Hoodie", 3500), ("Raffle Ticket Book", 2000),
)
ATTRIBUTES = (("Size", ("S", "M", "L", "XL"), 0), ("Color", ("Navy", "White", "Green"), 0),
              ("Gift Wrap", ("Yes",), 300))
PROMOS = ((3, "save20", 20), (4, "save10", 10), (5, "freeship", 0))  # (promo id, code, percent off the subtotal)
CARRIERS = ((1, "UPS"), (2, "USPS"), (3, "FedEx"))
METHODS = ((1, "Ground"), (2, "2nd Day Air"), (3, "Priority Mail"))
PORTALS = (1147329, 1147330, 1147331)
NOTE_TEXTS = ("Customer called about delivery", "Please ship before the event", "Invoice sent", "Address verified")
INFO_LABELS = (("How did you hear about us?", ("Newsletter", "Friend", "Event", "Search")),
               ("Dedication", ("In memory of a friend", "In honor of my mother", "")))


def iso(moment: datetime) -> str:
    """Firespring's timestamp format: UTC with an explicit ``+00:00`` offset."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@dataclass
class Counters:
    """Ids of the nested objects; they grow independently, as in a real database."""

    values: dict[str, int] = field(default_factory=lambda: {
        "message": 100, "item": 20000, "attribute": 50000, "file": 7000, "transaction": 90000,
        "address": 30000, "shipment": 60000, "note": 8000, "info": 9000, "order_promo": 10,
    })

    def next(self, kind: str) -> int:
        self.values[kind] += 1
        return self.values[kind]


class FirespringFaker:
    """Draws website users and orders; amounts are integer cents that add up as the sample's do."""

    def __init__(self, rng: random.Random, seed: int, id_base: int = 0) -> None:
        self.rng = rng
        self.people = People.make("en_US", seed, size=200)
        self.ids = Counters()
        if id_base:
            for kind in self.ids.values:
                self.ids.values[kind] += id_base
        self.users: dict[int, list[dict[str, Any]]] = {}
        self.addresses: dict[int, dict[str, Any]] = {}
        next_user = 11
        for website in WEBSITES:
            pool = []
            for _ in range(60):
                pool.append(self._user(next_user))
                next_user += rng.randint(1, 7)
            self.users[website] = pool

    # --- people ---------------------------------------------------------------------------------------
    def _user(self, user_id: int) -> dict[str, Any]:
        rng, p = self.rng, self.people
        first, last = rng.choice(p.first_names), rng.choice(p.last_names)
        company = rng.choice(p.companies) if rng.random() < 0.4 else ""
        slug = (company or f"{first}{last}").lower()
        username = "".join(ch for ch in slug if ch.isascii() and ch.isalnum())[:16] or f"user{user_id}"
        self.addresses[user_id] = self._address(first, last, company)
        return {"object": "website_user", "id": user_id, "third_party_identifier": "", "username": username}

    def _address(self, first: str | None = None, last: str | None = None, company: str = "") -> dict[str, Any]:
        rng, p = self.rng, self.people
        first = first or rng.choice(p.first_names)
        last = last or rng.choice(p.last_names)
        return {
            "first_name": first,
            "last_name": last,
            "company": company,
            "address_1": rng.choice(p.streets),
            "address_2": "",
            "city": rng.choice(p.cities),
            "state": rng.choice(("NE", "IA", "KS", "MO", "CO", "SD", "MN", "TX")),
            "zip": rng.choice(p.postcodes),
            "country": "US",
            "email": email_for(rng, first, last, DOMAINS),
            "phone": rng.choice(p.phones),
        }

    # --- orders ---------------------------------------------------------------------------------------
    def status_for_age(self, age_days: float) -> str:
        """Old orders are mostly finished; recent ones mostly open."""
        rng = self.rng
        if age_days > 30:
            return rng.choices(STATUSES, (1, 2, 3, 2, 6, 1, 25, 60))[0]
        return rng.choices(STATUSES, (6, 30, 2, 20, 3, 6, 20, 13))[0]

    def order(self, order_id: int, website: int, created: datetime, status: str, now: datetime,
              user_id: int | None | bool = True) -> dict[str, Any]:
        """A fully expanded order (``user_id``: True picks a user, None makes a guest order)."""
        rng = self.rng
        user: dict[str, Any] | None = None
        if user_id is True:
            user = rng.choice(self.users[website]) if rng.random() < 0.8 else None
        elif isinstance(user_id, int) and not isinstance(user_id, bool):
            user = next((u for pool in self.users.values() for u in pool if u["id"] == user_id), None)
        base_address = self.addresses[user["id"]] if user else self._address()
        order_type = rng.choice(("catalog", "ecommerce", "ecommerce"))
        portal = rng.choice(PORTALS) if rng.random() < 0.6 else 0
        items = [self._item(portal) for _ in range(rng.choices((1, 2, 3, 4), (50, 30, 15, 5))[0])]
        subtotal = sum(i["total"] for i in items)
        promo = rng.choice(PROMOS) if rng.random() < 0.25 else None
        shipping = 0 if order_type == "catalog" else rng.choice((500, 795, 1250))
        subtotal_discount = round(subtotal * promo[2] / 100) if promo else 0
        shipping_discount = shipping if promo and promo[1] == "freeship" else 0
        tax_rate = rng.choice((0, 0, 0.055, 0.07, 0.09))
        tax = round((subtotal - subtotal_discount) * tax_rate)
        total = subtotal - subtotal_discount + tax + shipping - shipping_discount
        pay_later = rng.random() < 0.1
        unpaid = pay_later or status in ("pending_approval", "denied") or rng.random() < 0.03
        amount_paid = 0 if unpaid else total
        message_id = self.ids.next("message")
        tracking = f"{created:%y%m%d}-{''.join(rng.choices(string.ascii_uppercase + string.digits, k=6))}"
        doc: dict[str, Any] = {
            "object": "order",
            "id": order_id,
            "additional_information": self._information() if rng.random() < 0.3 else [],
            "amount_paid": amount_paid,
            "billing_address": {"object": "order_billing_address", "id": self.ids.next("address"), **base_address},
            "content_catalog": 10119035 + WEBSITES.index(website),
            "currency": "usd",
            "date_created": iso(created),
            "is_pay_later": pay_later,
            "items": items,
            "message": {"object": "message", "id": message_id, "message_tracking_number": tracking,
                        "subject": f"Order {tracking}", "date_created": iso(created)},
            "notes": [],
            "order_type": order_type,
            "payment_transactions": self._payments(amount_paid, created, now),
            "portal": {"object": "portal", "id": portal, "name": f"Portal {portal}"} if portal else 0,
            "pricing": {"object": "order_pricing", "shipping": shipping, "shipping_discount": shipping_discount,
                        "subtotal": subtotal, "subtotal_discount": subtotal_discount, "tax": tax, "total": total},
            "promo_code": None if promo is None else {
                "object": "order_promo_code",
                "id": self.ids.next("order_promo"),
                "promo_code": {"object": "promo_code", "id": promo[0], "promo_code": promo[1],
                               "description": f"{promo[2]}% off" if promo[2] else "Free shipping",
                               "is_active": True},
                "shipping_discount": shipping_discount,
                "subtotal_discount": subtotal_discount,
            },
            "shipments": [],
            "shipping_tax_percentage": 0,
            "status": status,
            "user": user,
        }
        if rng.random() < 0.15:
            doc["notes"].append(self.note(created + timedelta(hours=rng.randint(1, 48)), now))
        if status in ("shipped", "completed"):
            doc["shipments"].append(self.shipment(created + timedelta(days=rng.randint(1, 5)), now, base_address))
        return doc

    def _item(self, portal: int) -> dict[str, Any]:
        rng = self.rng
        product_index = rng.randrange(len(PRODUCTS))
        name, price = PRODUCTS[product_index]
        attributes: list[dict[str, Any]] = []
        for attr_name, values, extra in ATTRIBUTES:
            if rng.random() < 0.25:
                attributes.append({"object": "order_item_attribute", "id": self.ids.next("attribute"),
                                   "name": attr_name, "value": rng.choice(values), "price": extra})
        unit = price + sum(a["price"] for a in attributes)
        quantity = rng.choices((1, 2, 3, 5, 10), (60, 20, 10, 6, 4))[0]
        files = []
        if name.startswith(("Brochure", "Event Poster", "Annual Report")):
            files.append({"object": "order_item_print_ready_file", "id": self.ids.next("file"),
                          "file_name": f"{name.split()[0].lower()}-final.pdf"})
        return {
            "object": "order_item",
            "id": self.ids.next("item"),
            "attributes": attributes,
            "catalog_item": 500100 + product_index,
            "name": name,
            "portal": {"object": "portal", "id": portal, "name": f"Portal {portal}"} if portal else 0,
            "price": unit,
            "print_ready_files": files,
            "quantity": quantity,
            "sku": f"SKU-{500100 + product_index}",
            "total": unit * quantity,
        }

    def _payments(self, amount: int, created: datetime, now: datetime) -> list[dict[str, Any]]:
        if amount <= 0:
            return []
        rng = self.rng
        parts = [amount]
        if amount > 2000 and rng.random() < 0.1:  # a split payment: two charges that add up
            first = amount // 2
            parts = [first, amount - first]
        result = []
        for n, part in enumerate(parts):
            when = min(created + timedelta(minutes=n * 30), now)
            method = rng.choice(("credit_card", "credit_card", "credit_card", "paypal", "check"))
            result.append({
                "object": "payment_transaction",
                "id": self.ids.next("transaction"),
                "amount": part,
                "card_type": rng.choice(("visa", "mastercard", "amex", "discover")) if method == "credit_card" else "",
                "date_created": iso(when),
                "last_four": f"{rng.randint(0, 9999):04d}" if method == "credit_card" else "",
                "payment_method": method,
                "status": "approved",
                "type": "charge",
            })
        return result

    def _information(self) -> list[dict[str, Any]]:
        label, values = self.rng.choice(INFO_LABELS)
        return [{"object": "order_additional_information", "id": self.ids.next("info"), "label": label,
                 "value": self.rng.choice(values)}]

    def note(self, when: datetime, now: datetime) -> dict[str, Any]:
        return {"object": "order_note", "id": self.ids.next("note"), "date_created": iso(min(when, now)),
                "note": self.rng.choice(NOTE_TEXTS)}

    def shipment(self, when: datetime, now: datetime, address: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        carrier, method = rng.choice(CARRIERS), rng.choice(METHODS)
        return {
            "object": "order_shipment",
            "id": self.ids.next("shipment"),
            "date_shipped": iso(min(when, now)),
            "shipping_address": {"object": "order_shipping_address", "id": self.ids.next("address"), **address},
            "shipping_carrier": {"object": "shipping_carrier", "id": carrier[0], "name": carrier[1]},
            "shipping_method": {"object": "shipping_method", "id": method[0], "name": method[1]},
            "tracking_number": "1Z" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=16)),
        }

    def moment(self, start: datetime, end: datetime) -> datetime:
        return moment_between(self.rng, start, end)
