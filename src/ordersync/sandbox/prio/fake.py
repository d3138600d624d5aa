"""Prio-shaped data: attraction ticket orders with real nested bookings, contacts, payments and pricing.

The documentation's sample only has placeholders for the nested objects; the shapes here follow the fields the
documentation filters on and the vendor's other material names, the rest is an **assumption** documented in
docs/prio.md.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ordersync.sandbox.fake import People, email_for, moment_between

DOMAINS = ("example.nl", "mail.com", "gmail.com", "outlook.com", "ziggo.nl")
# How often each order status occurs. The documentation shows ORDER_CONFIRMED; the other four are the rest of the
# vocabulary as we read the vendor's material (the client keeps its own list of them, on purpose).
STATUS_WEIGHTS = (("ORDER_CONFIRMED", 80), ("ORDER_PENDING", 5), ("ORDER_CANCELLED", 8),
                  ("ORDER_PARTIALLY_CANCELLED", 4), ("ORDER_BLOCKED", 3))
ORDER_STATUSES = tuple(status for status, _ in STATUS_WEIGHTS)
# The statuses of an order whose money was taken: confirmed, and what a confirmed order became. A pending order was
# never confirmed; a blocked one is held before its confirmation, so its payment is not captured either.
PAID_STATUSES = ("ORDER_CONFIRMED", "ORDER_PARTIALLY_CANCELLED", "ORDER_CANCELLED")
RESELLERS = (("1300", "Demo reseller"), ("1301", "Canal Tours Reseller"), ("1302", "City Passes BV"))
DISTRIBUTORS = (("501", "Demo Distributor"), ("502", "Museum Shop Distributor"))
MARKET_ADMINS = (("77", "Prio Netherlands"), ("78", "Prio Spain"))
CASHIERS = (("cashier@prioticket.com", "Demo Cashier"), ("desk1@prioticket.com", "Front Desk 1"),
            ("desk2@prioticket.com", "Front Desk 2"), ("web@prioticket.com", "Webshop"))
PRODUCTS = (
    ("Canal Cruise Amsterdam", "2150"), ("Rijksmuseum Entrance", "2160"), ("Van Gogh Museum", "2160"),
    ("Anne Frank House", "2170"), ("Heineken Experience", "2180"), ("A'DAM Lookout", "2180"),
    ("Sagrada Familia", "3100"), ("Park Güell", "3100"), ("Hop-on Hop-off Bus 24h", "2150"),
    ("Zoo Artis", "2170"), ("Madame Tussauds", "2190"), ("Keukenhof Gardens", "2190"),
)
TYPES = (("ADULT", 1, "1.00"), ("CHILD", 2, "0.50"), ("SENIOR", 3, "0.80"), ("STUDENT", 4, "0.75"))
PAYMENT_METHODS = ("CARD", "IDEAL", "PAYPAL", "ON_ACCOUNT")
PARTNERS = (("4534543543", "Partner Name"), ("4534543544", "Hotel Concierge NL"), ("4534543545", "Cruise Port Desk"))
VARIATIONS = (("Peak Hour", "2.50", "PRODUCT_DYNAMIC"), ("Weekend", "1.50", "PRODUCT_DYNAMIC"),
              ("Booking fee", "0.95", "FEE"))
FLAGS = (("VIP", "ORDER"), ("GROUP", "ORDER"), ("RESEND_TICKETS", "SYSTEM"), ("FRAUD_CHECKED", "SYSTEM"))
CUSTOM_FIELDS = (("hotel_name", ("Hotel Okura", "NH Centre", "Pulitzer", "citizenM")),
                 ("pickup_point", ("Centraal Station", "Dam Square", "Museumplein")),
                 ("how_did_you_hear", ("Google", "Friend", "Hotel", "Social media")))
TAX_PERCENT = Decimal(9)


def stamp(moment: datetime | None) -> str | None:
    """Prio's timestamp format, as in the documentation's sample: UTC, milliseconds, ``Z``."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True)
class Product:
    product_id: str
    title: str
    supplier_id: str
    base_price: Decimal
    availability_id: int
    capacity_id: int


class PrioFaker:
    def __init__(self, rng: random.Random, seed: int) -> None:
        self.rng = rng
        self.seed = seed
        self.people = People.make("nl_NL", seed, size=200)
        self.products = [
            Product(str(40100 + i), title, supplier, Decimal(rng.choice((1250, 1995, 2250, 2750, 3300, 4500))) / 100,
                    700000 + i * 10, 900000 + i * 10)
            for i, (title, supplier) in enumerate(PRODUCTS)
        ]
        self.next_booking = 1

    def uid(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def contact(self) -> dict[str, Any]:
        rng, p = self.rng, self.people
        first, last = rng.choice(p.first_names), rng.choice(p.last_names)
        return {
            "contact_uid": self.uid(),
            "contact_type": "CUSTOMER",
            "contact_name_first": first,
            "contact_name_last": last,
            "contact_email": email_for(rng, first, last, DOMAINS),
            "contact_phone": rng.choice(p.phones) if rng.random() < 0.6 else None,
            "contact_company": rng.choice(p.companies) if rng.random() < 0.15 else None,
            "contact_country": rng.choice(("NL", "NL", "NL", "BE", "DE", "ES", "GB", "US")),
            "contact_language": rng.choice(("nl", "en", "de", "es")),
        }

    def booking(self, order_reference: str, created: datetime, status: str,
                rng: random.Random | None = None) -> dict[str, Any]:
        rng = rng or self.rng
        product = rng.choice(self.products)
        details = []
        total = Decimal(0)
        for name, code, factor in rng.sample(TYPES, rng.choice((1, 1, 2))):
            count = rng.randint(1, 4)
            price = (product.base_price * Decimal(factor)).quantize(Decimal("0.01"))
            total += price * count
            details.append({"product_type_id": int(product.product_id) * 10 + code, "product_type": name,
                            "product_type_code": code, "product_type_label": name.title(),
                            "product_type_count": count, "product_type_price": money(price),
                            "product_type_price_total": money(price * count)})
        self.next_booking += 1
        travel = (created + timedelta(days=rng.randint(0, 60))).replace(hour=rng.choice((9, 10, 11, 13, 15)),
                                                                        minute=0, second=0, microsecond=0)
        slot = rng.randint(0, 9)
        return {
            "booking_reference": f"BK{order_reference}{len(details)}{self.next_booking:06d}",
            "booking_external_reference": f"EXTBK-{self.next_booking:07d}" if rng.random() < 0.3 else None,
            "booking_status": "BOOKING_CANCELLED" if status == "ORDER_CANCELLED" else "BOOKING_CONFIRMED",
            "booking_travel_date": stamp(travel),
            "booking_created": stamp(created),
            "product_id": product.product_id,
            "product_title": product.title,
            "product_supplier_id": product.supplier_id,
            "product_availability_id": product.availability_id + slot,
            "product_availability_capacity_id": product.capacity_id + slot,
            "product_type_details": details,
            "booking_pricing": {"price_currency": "EUR", "price_subtotal": money(total), "price_total": money(total)},
        }

    def order(self, reference: str, created: datetime, status: str | None = None) -> dict[str, Any]:
        rng = self.rng
        status = status or rng.choices([s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS])[0]
        reseller, distributor, admin = rng.choice(RESELLERS), rng.choice(DISTRIBUTORS), rng.choice(MARKET_ADMINS)
        cashier = rng.choice(CASHIERS)
        bookings = [self.booking(reference, created, status) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        if status == "ORDER_PARTIALLY_CANCELLED":
            self.cancel_part(bookings, reference, created)
        contacts = [self.contact() for _ in range(rng.choice((1, 1, 1, 2)))]
        doc: dict[str, Any] = {
            "order_bookings": bookings,
            "order_channel": {"channel_id": rng.choice(("1", "2")), "channel_name": rng.choice(("Web", "Kiosk"))},
            "order_created": stamp(created),
            "order_created_email": cashier[0],
            "order_created_name": cashier[1],
            "order_distributor_id": distributor[0],
            "order_distributor_name": distributor[1],
            "order_external_reference": f"EXT{rng.randint(100000, 999999)}" if rng.random() < 0.5 else None,
            "order_language": rng.choice(("en", "nl", "de", "es")),
            "order_market_admin_id": admin[0],
            "order_market_admin_name": admin[1],
            "order_modified": stamp(created),
            "order_platform_id": "1",
            "order_platform_name": "Prio Sandbox",
            "order_pricing": {},
            "order_reference": reference,
            "order_reseller_id": reseller[0],
            "order_reseller_name": reseller[1],
            "order_status": status,
            "order_version": 1,
            "order_view_type": "DISTRIBUTOR",
            "order_partner_id": None,
            "order_partner_name": None,

            "order_settlement_type": {"settlement_type": rng.choice(("EXTERNAL", "DIRECT"))},
            "order_contacts": contacts,
            "order_promocodes": [],
            "order_payments": [],
            "order_invoices": [],
            "order_options": {"email_options": {"email_types": {"send_tickets": True}}},
            "order_flags": [],
            "order_custom_fields": [],
            "order_notes": [],
            "order_activity_url": f"https://activity.prioticket.com/orders/{reference}",
            "order_customer_url": f"https://customer.prioticket.com/orders/{reference}",
            "order_confirmed": stamp(created) if status in PAID_STATUSES else None,
            "order_cancellation_date_time": None,
        }
        if rng.random() < 0.12:
            doc["order_promocodes"] = [{"promocode_code": rng.choice(("SPRING10", "WELCOME", "CITY5")),
                                        "promocode_discount": rng.choice(("2.50", "5.00", "7.50"))}]
        if rng.random() < 0.35:
            doc["order_partner_id"], doc["order_partner_name"] = rng.choice(PARTNERS)
        if rng.random() < 0.25:
            doc["order_pricing"] = {"price_variations": [
                {"variation_label": label, "variation_amount": amount, "variation_type": kind}
                for label, amount, kind in rng.sample(VARIATIONS, rng.choice((1, 1, 2)))]}
        if rng.random() < 0.15:
            doc["order_flags"] = [{"flag_name": name, "flag_type": kind, "flag_created": stamp(created)}
                                  for name, kind in rng.sample(FLAGS, rng.choice((1, 1, 2)))]
        if rng.random() < 0.3:
            doc["order_custom_fields"] = [{"custom_field_name": name, "custom_field_value": rng.choice(values)}
                                          for name, values in rng.sample(CUSTOM_FIELDS, rng.choice((1, 2)))]
        self.price(doc)
        if status != "ORDER_PENDING":  # drawn for a blocked order too, so that the rest of the data stays as it was
            payments, invoices = self.payments(doc, created), self.invoices(doc, created)
            if status in PAID_STATUSES:
                doc["order_payments"], doc["order_invoices"] = payments, invoices
        if status == "ORDER_CANCELLED":
            doc["order_cancellation_date_time"] = stamp(created)
        return doc

    def cancel_part(self, bookings: list[dict[str, Any]], reference: str, created: datetime) -> None:
        """A partially cancelled order: its first booking cancelled, the others standing. An order drawn with one
        booking gets a second one, drawn from a generator of the seed and the reference so that the other orders'
        draws stay as they were (only the booking numbers after it move up by one)."""
        if len(bookings) == 1:
            own = random.Random(f"{self.seed}:{reference}:part")
            bookings.append(self.booking(reference, created, "ORDER_PARTIALLY_CANCELLED", own))
        bookings[0]["booking_status"] = "BOOKING_CANCELLED"

    def payments(self, doc: dict[str, Any], when: datetime) -> list[dict[str, Any]]:
        """One payment of the order's total, captured at ``when``."""
        rng = self.rng
        return [{
            "payment_id": self.uid()[:16],
            "payment_method": rng.choice(PAYMENT_METHODS),
            "payment_status": "PAYMENT_CAPTURED",
            "payment_amount": doc["order_pricing"]["price_total"],
            "payment_currency": "EUR",
            "payment_created": stamp(when),
        }]

    def invoices(self, doc: dict[str, Any], when: datetime) -> list[dict[str, Any]]:
        """Most paid orders have a paid invoice of their total."""
        if self.rng.random() >= 0.6:
            return []
        self.next_booking += 1
        reference = doc["order_reference"]
        return [{
            "invoice_id": f"INV-{when:%Y}-{self.next_booking:07d}",
            "invoice_status": "INVOICE_PAID",
            "invoice_amount": doc["order_pricing"]["price_total"],
            "invoice_currency": "EUR",
            "invoice_created": stamp(when),
            "invoice_url": f"https://invoices.prioticket.com/{reference}/INV-{self.next_booking:07d}.pdf",
        }]

    @staticmethod
    def price(doc: dict[str, Any]) -> None:
        """``order_pricing`` from the bookings, the price variations (kept) and promo codes: decimal strings in
        EUR, tax included; ``price_total`` = subtotal + variations - discount."""
        subtotal = sum((Decimal(b["booking_pricing"]["price_total"]) for b in doc["order_bookings"]
                        if isinstance(b, dict) and "booking_pricing" in b), Decimal(0))
        old = doc.get("order_pricing")
        kept = old.get("price_variations") if isinstance(old, dict) else None
        variations = [v for v in kept or [] if isinstance(v, dict)]
        extra = sum((Decimal(str(v.get("variation_amount") or 0)) for v in variations), Decimal(0))
        discount = min(subtotal + extra, sum((Decimal(p["promocode_discount"]) for p in doc["order_promocodes"]),
                                             Decimal(0)))
        total = subtotal + extra - discount
        tax = total * TAX_PERCENT / (100 + TAX_PERCENT)
        doc["order_pricing"] = {"price_currency": "EUR", "price_subtotal": money(subtotal),
                                "price_variations": variations, "price_discount": money(discount),
                                "price_tax_amount": money(tax), "price_total": money(total)}

    def history(self, anchor: datetime) -> tuple[datetime, datetime]:
        """About three years of orders up to an hour before the anchor."""
        return anchor - timedelta(days=3 * 365), anchor - timedelta(hours=1)

    def moment(self, start: datetime, end: datetime) -> datetime:
        return moment_between(self.rng, start, end)
