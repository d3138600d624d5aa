"""Frontcore-shaped data: Norwegian course orders and customers, generated reproducibly from a seed."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ordersync.sandbox.fake import People, email_for, moment_between

OSLO = ZoneInfo("Europe/Oslo")
DOMAINS = ("eksempel.no", "online.no", "firma.no", "gmail.com", "epost.no")
COURSE_TITLES = (
    "Lær REST API", "Førstehjelp grunnkurs", "Excel for økonomer", "Prosjektledelse i praksis", "Truckførerkurs",
    "Varme arbeider", "Norsk for fremmedspråklige", "Lederutvikling", "Brannvern", "HMS for ledere",
    "Økonomistyring", "Kommunikasjon på jobb", "Sikker jobbanalyse", "Bæreevne og rigging", "Arbeid på tak",
)
PLACES = ("Oslo", "Bergen", "Trondheim", "Stavanger", "Tromsø", "Kristiansand", "Bodø", "Ålesund", "Nett")
CAMPAIGNS = ("Vårkampanje", "Høsttilbud", "Tidlig påmelding", "Bedriftsrabatt")
DEPARTMENTS = ("Salg", "Økonomi", "HR", "IT", "Drift", "Innkjøp")
NOTES = ("Faktura sendes kvartalsvis", "Ring før levering", "Rammeavtale 2024", "Kontaktperson byttet",
         "Ønsker kurs på engelsk")
SECOND_LINES = ("2. etasje", "Inngang B", "c/o Regnskap", "Bygg 3", "Postmottak")
THIRD_LINES = ("Att: Kursansvarlig", "Avd. Vest", "Sentralbord")


def local_iso(moment: datetime | None) -> str | None:
    """Frontcore's timestamp format: Oslo local time with its offset."""
    return moment.astimezone(OSLO).isoformat(timespec="seconds") if moment else None


def blank_address(with_phone: bool = False) -> dict[str, Any]:
    address: dict[str, Any] = {"address": None, "address_2": None, "address_3": None, "zipcode": None, "city": None}
    if with_phone:
        address["phone"] = None
    return address


def product_of(course: dict[str, Any]) -> dict[str, Any]:
    """A course's product as an order line (and ``/v2/orders/products``) shows it."""
    return {"id": course["product_id"], "item_number": str(course["product_id"]), "title": course["title"],
            "title_label": None, "price": course["price"], "currency": "NOK", "is_main_product": True,
            "vat_percentage": course["vat"]}


@dataclass
class Course:
    id: int
    title: str
    product_id: int
    price: float
    vat: int


class FrontcoreFaker:
    """Draws customers, users, courses and orders; ids grow from the vendor's sample ranges."""

    def __init__(self, rng: random.Random, seed: int) -> None:
        self.rng = rng
        self.seed = seed
        self.people = People.make("no_NO", seed)
        self.courses = [
            Course(22353 + i, title, 8079 + i, rng.choice((1500, 2490, 3990.5, 4500, 990, 12500.75, 6200)),
                   rng.choice((0, 0, 25)))
            for i, title in enumerate(COURSE_TITLES)
        ]
        self.next_user_id = 154418
        self.next_participant_id = 124918
        self.next_line_id = 31399

    def address(self, with_phone: bool = False) -> dict[str, Any]:
        p, rng = self.people, self.rng
        address = {"address": rng.choice(p.streets), "address_2": None, "address_3": None,
                   "zipcode": rng.choice(p.postcodes), "city": rng.choice(p.cities)}
        if with_phone:
            address["phone"] = None
        return address

    def customer(self, customer_id: int, created: datetime, updated: datetime) -> dict[str, Any]:
        rng, p = self.rng, self.people
        private = rng.random() < 0.3
        active = rng.random() < 0.9  # the customers sample shows deactivated customers (idStatus "2")
        first, last = rng.choice(p.first_names), rng.choice(p.last_names)
        title = f"{first} {last}" if private else rng.choice(p.companies)
        head: dict[str, Any] = {
            "id": customer_id,
            "title": title,
            "department": None,
            "phone": rng.choice(p.phones) if rng.random() < 0.7 else None,
            "fax": None,
            "email": email_for(rng, first, last, DOMAINS) if rng.random() < 0.8 else None,
            "webaddress": None,
            "orgnr": None if private else str(rng.randint(810000000, 999999999)),
            "invoice_email": email_for(rng, "faktura", last, DOMAINS) if rng.random() < 0.5 else None,
            "customer_reference_id": None,
            "customer_reference": f"{first} {last}" if not private else None,
            "note": None,
            "idStatus": "1" if active else "2",
            "turnover": None,
            "idParentCustomer": None,
            "invoice_method": rng.choice(("electronic", "email", "paper")),
            "country": {"id": 159, "title": "Norge", "code": "NO"},
            "status": "Active" if active else "Deactivated",
            "type": "Private" if private else "Company",
        }
        # The vendor adds employees automatically for private customers (see the customers sample).
        employees: dict[str, Any] = {"employees": []} if private else {}
        tail: dict[str, Any] = {
            "duedate_days": rng.choice((10, 14, 30)),
            "seller": None,
            "invoice_address": self.address(),
            "post_address": blank_address(),
            "visit_address": blank_address(),
            "custom_properties": None,
            "created_at": local_iso(created),
            "updated_at": local_iso(updated),
        }
        self.fill_text_fields(customer_id, head, tail)
        return {**head, **employees, **tail}

    def fill_text_fields(self, customer_id: int, head: dict[str, Any], tail: dict[str, Any]) -> None:
        """The text fields the documentation's sample fills (department, fax, note, post and visit addresses, ...),
        on some customers. Drawn from a generator of their own (seed and id), so that the rest of the data stays
        what the main generator made before these fields were filled."""
        rng, p = random.Random(self.seed * 1_000_003 + customer_id), self.people
        if head["type"] == "Company":
            if rng.random() < 0.3:
                head["department"] = rng.choice(DEPARTMENTS)
            if rng.random() < 0.25:
                slug = "".join(ch for ch in head["title"].lower() if ch.isascii() and ch.isalnum())[:20] or "firma"
                head["webaddress"] = f"https://www.{slug}.no"
            if rng.random() < 0.3:
                tail["visit_address"] = {**blank_address(), "address": rng.choice(p.streets),
                                         "zipcode": rng.choice(p.postcodes), "city": rng.choice(p.cities)}
        if rng.random() < 0.05:
            head["fax"] = rng.choice(p.phones)
        if rng.random() < 0.2:
            head["customer_reference_id"] = str(rng.randint(1000, 99999))
        if rng.random() < 0.15:
            head["note"] = rng.choice(NOTES)
        if rng.random() < 0.3:
            tail["post_address"] = {**blank_address(), "address": f"Postboks {rng.randint(1, 9999)}",
                                    "zipcode": rng.choice(p.postcodes), "city": rng.choice(p.cities)}
        for name in ("invoice_address", "post_address", "visit_address"):  # the sample fills the 2nd and 3rd lines
            if tail[name]["address"] and rng.random() < 0.2:
                third = rng.choice(THIRD_LINES) if rng.random() < 0.3 else None
                tail[name] = {**tail[name], "address_2": rng.choice(SECOND_LINES), "address_3": third}

    def user(self) -> dict[str, Any]:
        rng, p = self.rng, self.people
        first, last = rng.choice(p.first_names), rng.choice(p.last_names)
        self.next_user_id += 1
        born = f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(1950, 2004)} 00:00:00"
        home = self.address(with_phone=True)
        return {
            "id": self.next_user_id,
            "firstname": first,
            "lastname": last,
            "date_of_birth": born if rng.random() < 0.6 else None,
            "email": email_for(rng, first, last, DOMAINS),
            "phone": str(rng.randint(40000000, 99999999)),
            "company": rng.choice(p.companies) if rng.random() < 0.6 else None,
            "position": None,
            "invoice_address": dict(home),
            "home_address": home,
            "work_address": blank_address(with_phone=True),
        }

    def order(self, order_id: int, created: datetime, customer: dict[str, Any] | None, updated: datetime | None,
              exported: datetime | None, campaign_id: int | None) -> dict[str, Any]:
        """A full order; the sandbox strips ``users`` and include-only objects per request."""
        rng = self.rng
        first_user = self.user()
        lines: list[dict[str, Any]] = []
        main_course = rng.choice(self.courses)
        place = rng.choice(PLACES)
        start = created + timedelta(days=rng.randint(7, 120))
        for n in range(rng.choice((1, 1, 1, 2, 3))):
            course = main_course if n == 0 else rng.choice(self.courses)
            quantity = rng.choice((1, 1, 1, 2, 3, 5))
            discount_percent = rng.choice((0, 0, 0, 10, 20))
            discount = _num(_cents(_dec(course.price) * quantity * discount_percent / 100))
            self.next_line_id += 1
            relations: list[dict[str, Any]] = []
            users: list[dict[str, Any]] = []
            for _ in range(quantity):
                participant = first_user if not users else self.user()
                users.append({**participant, "invoice_reference": None})
                self.next_participant_id += 1
                relations.append({"type": "participant", "participant_id": self.next_participant_id,
                                  "coursedate_id": 9304757 + rng.randint(0, 400000),
                                  "user_id": participant["id"], "course_id": course.id})
            lines.append({
                "id": self.next_line_id,
                "currency": {"id": "1", "title": "NOK", "long_title": "Norwegian kroner"},
                "price_at_order_per_item_vat_excluded": course.price,
                "discount_percent_at_order": discount_percent,
                "discount_amount_at_order": 0,
                "discount_calculated_at_order": discount,
                "price_at_invoice_per_item_vat_excluded": 0,
                "discount_percent_at_invoice": 0,
                "discount_calculated_at_invoice": 0,
                "price_at_export_per_item_vat_excluded": course.price if exported else 0,
                "discount_percent_at_export": discount_percent if exported else 0,
                "discount_calculated_at_export": discount if exported else 0,
                "quantity": quantity,
                "database_relations": relations,
                "product": product_of(course.__dict__),
                "users": users,
                "created_at": local_iso(created),
                "updated_at": None,
            })
        invoice_email = (customer or {}).get("invoice_email") or first_user["email"]
        return {
            "id": order_id,
            "title": f"{main_course.title} #{order_id}",
            "title_detailed": f"{start:%d.%m.%Y} - {start + timedelta(days=rng.randint(0, 4)):%d.%m.%Y} - {place}",
            "is_paid": rng.random() < 0.7,
            "payment_method": rng.choice((None, "invoice", "card", "vipps")),
            "your_reference": None,
            "booker": None,
            "gln_number": None,
            "customer": {"id": customer["id"]} if customer else None,
            "idCampaign": campaign_id,
            "seller_id": None,
            "invoice_address": None,
            "invoice_address_2": None,
            "invoice_address_3": None,
            "invoice_zipcode": None,
            "invoice_city": None,
            "invoice_email": invoice_email,
            "first_user": first_user,
            "lines": lines,
            "booker_admin_user": None,
            "webintegration_id": None,
            "custom_properties": None,
            "calculated_totals": calculated_totals(lines),
            "exported_at": local_iso(exported),
            "updated_at": local_iso(updated),
            "created_at": local_iso(created),
        }

    def campaign(self, campaign_id: int) -> dict[str, Any]:
        return {"id": campaign_id, "title": CAMPAIGNS[campaign_id % len(CAMPAIGNS)], "code": f"KAMP{campaign_id}"}

    def history(self, orders: int, anchor: datetime) -> tuple[datetime, datetime]:
        """The span the generated orders are created in: about three years up to the anchor."""
        return anchor - timedelta(days=3 * 365), anchor - timedelta(hours=1)

    def moment(self, start: datetime, end: datetime) -> datetime:
        return moment_between(self.rng, start, end)


def calculated_totals(lines: list[dict[str, Any]]) -> dict[str, float | int]:
    """The order's totals as the vendor's arithmetic makes them, to the øre: the VAT is the lines' net amounts
    at their rates, rounded once on the order, and the total is built from the rounded parts (after discounts +
    VAT), so that the figures the order shows add up. Decimals: a binary float rounds 997.625 down to 997.62."""
    before = sum((_dec(line["price_at_order_per_item_vat_excluded"]) * line["quantity"] for line in lines), Decimal(0))
    discounts = sum((_dec(line["discount_calculated_at_order"]) for line in lines), Decimal(0))
    vat = _cents(sum((_net(line) * _dec(line["product"]["vat_percentage"]) / 100 for line in lines), Decimal(0)))
    after = before - discounts
    return {
        "total_amount_before_discounts": _num(before),
        "total_amount_after_discounts": _num(after),
        "total_amount_of_discounts": _num(discounts),
        "total_amount_of_vat": _num(vat),
        "total_amount_incl_discounts_and_vat": _num(after + vat),
    }


def _dec(value: float | int | str) -> Decimal:
    """An amount as written (``3990.5``), exactly."""
    return Decimal(str(value))


def _cents(value: Decimal) -> Decimal:
    """Rounded to the øre, halves up, as money is."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _net(line: dict[str, Any]) -> Decimal:
    """A line's amount after its discount, before VAT."""
    gross = _dec(line["price_at_order_per_item_vat_excluded"]) * line["quantity"]
    return gross - _dec(line["discount_calculated_at_order"])


def _num(value: Decimal) -> float | int:
    """Frontcore writes whole amounts as integers and others with decimals."""
    rounded = _cents(value)
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)
