"""The e-guma REST API v1 sandbox: ``/v1/vouchers/orders.json`` and ``/v1/vouchers/orders/{id}.json``.

Semantics, as we read the vendor's documentation:

* the key is the ``apikey`` query parameter; a missing key is 400 ("missing parameter"), a wrong one 401, both
  plain text, as every e-guma error (faults included);
* ``created_at_after`` / ``updated_at_after`` keep orders at or after the value, ``*_before`` strictly before it;
  values must be exactly ``2019-06-04T23:15:14`` (local time, no zone), anything else is 400 (plain text);
* timestamps are Swiss local wall-clock time without a zone, stored and compared as text, as the vendor does:
  a filter is a window on that local axis (the autumn hour that occurs twice is one stretch of text);
* no pagination: one answer holds every match, in order-number order;
* ``updated_at`` equals ``created_at`` at creation and moves (to the sandbox clock's now) only when a voucher
  line is cancelled (**assumption**: the line leaves ``order_lines`` and the grand total drops by its total;
  the only line left cannot leave, cancelling it cancels the order; a refund payment keeps the payments equal to
  the grand total),
  the order is cancelled, or a value of the customer changes (every order of that customer moves).

Options (``ordersync serve eguma -o NAME=VALUE``): ``ms_per_order`` adds that many milliseconds per returned order
to a list answer, so that large windows are slow as on the real server (default 0).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ordersync.sandbox.app import JSON, Sandbox
from ordersync.sandbox.eguma.fake import EgumaFaker, new_uuid, recompute_total
from ordersync.sandbox.eguma.localtime import EXAMPLE, is_wall_clock, wall_clock
from ordersync.sandbox.errors import ApiError, BadParam, PlainText
from ordersync.sandbox.faults import pause
from ordersync.sandbox.openapi import error_answers, json_answer, query_param
from ordersync.sandbox.params import CALENDAR_DATE, CLOCK_TIME
from ordersync.sandbox.schema import Schema, check_fields

FILTERS = {
    "created_at_after": ("created", ">="),
    "created_at_before": ("created", "<"),
    "updated_at_after": ("updated", ">="),
    "updated_at_before": ("updated", "<"),
}
CUSTOMER_FIELDS = ("title", "first_name", "last_name", "company", "street", "zip", "city", "country", "email",
                   "accepts_marketing", "double_opt_in_confirmed_at", "phone")
ORDER_FIELDS = ("status", "currency", "language", "location", "discount_in_cents")
OPTIONS = ("ms_per_order",)
FIRST_NUMBER = 10001


def parse_filters(request: Request) -> tuple[list[str], list[Any]]:
    """The four documented date filters as SQL on the local-time text columns; 400 for a malformed value."""
    where: list[str] = []
    params: list[Any] = []
    for name, (column, op) in FILTERS.items():
        if name not in request.query_params:
            continue
        value = request.query_params[name]
        if not value:
            raise BadParam(name, f"Missing value for parameter {name} (format: {EXAMPLE})")
        if not is_wall_clock(value):
            raise BadParam(name, f"Invalid value for parameter {name}: '{value}' (format: {EXAMPLE})")
        where.append(f"{column} {op} ?")
        params.append(value)
    return where, params


class EgumaSandbox(Sandbox):
    name = "eguma"
    title = "e-guma REST API v1"
    orders_path = "/v1/vouchers/orders.json"
    error_style = PlainText()

    # --- data -------------------------------------------------------------------------------------------
    def define(self) -> None:
        unknown = set(self.options.extra) - set(OPTIONS)
        if unknown:
            names = ", ".join(sorted(unknown))
            raise ValueError(f"unknown eguma sandbox option(s) {names}; known: {', '.join(OPTIONS)}")
        try:
            self.ms_per_order = float(self.options.extra.get("ms_per_order", 0))
        except ValueError:
            raise ValueError(f"ms_per_order must be a number, not {self.options.extra['ms_per_order']!r}") from None
        self.store.define("orders", {"created": "TEXT", "updated": "TEXT", "number": "INTEGER"}, tags=("customer",))
        self.store.define("customers", {})
        self._faker: EgumaFaker | None = None

    @property
    def faker(self) -> EgumaFaker:
        if self._faker is None:
            self._faker = EgumaFaker(random.Random(self.seed + 1), self.seed)
        return self._faker

    def generate(self, rng: random.Random, orders: int, anchor: datetime) -> None:
        """Two years of orders up to the anchor; some later cancelled, trimmed or with a changed customer.

        Creations and changes are applied in time order, so every record is what the vendor would show.
        """
        faker = EgumaFaker(rng, self.seed)
        self._faker = faker
        start, end = anchor - timedelta(days=730), anchor - timedelta(hours=1)
        moments = sorted(faker.moment(start, end) for _ in range(orders))
        events: list[tuple[datetime, int, str, int]] = []
        for index, created in enumerate(moments):
            events.append((created, 0, "create", index))
            roll = rng.random()
            kind = "cancel" if roll < 0.08 else "cancel_line" if roll < 0.12 else "customer" if roll < 0.17 else ""
            if kind:
                events.append((faker.moment(created, end), 1, kind, index))
        events.sort()
        docs: list[dict[str, Any]] = []
        customers: dict[str, dict[str, Any]] = {}
        by_customer: dict[str, list[int]] = {}
        for moment, _, kind, index in events:
            stamp = wall_clock(moment)
            if kind == "create":
                if customers and rng.random() < 0.15:
                    customer = dict(customers[rng.choice(sorted(customers))])
                else:
                    customer = faker.customer(moment)
                    customers[customer["id"]] = customer
                docs.append(faker.order(new_uuid(rng), FIRST_NUMBER + index, moment, customer))
                by_customer.setdefault(customer["id"], []).append(index)
                continue
            doc = docs[index]
            if kind == "cancel":
                cancel(doc, stamp)
            elif kind == "cancel_line":
                cancel_line(doc, rng.randrange(len(doc["order_lines"])), stamp)
            else:
                cid = doc["customer"]["id"]
                changed = apply_customer_change(customers[cid], self.random_customer_change(rng, customers[cid]), stamp)
                for other in by_customer[cid]:
                    docs[other]["customer"] = dict(changed)
                    docs[other]["updated_at"] = stamp
        self.store.put_many("customers", [(c["id"], c, {}, {}) for c in customers.values()])
        for chunk in range(0, len(docs), 5000):
            self.store.put_many("orders", [self._item(doc) for doc in docs[chunk:chunk + 5000]])

    def random_customer_change(self, rng: random.Random, customer: dict[str, Any]) -> dict[str, Any]:
        people = self.faker.people
        choice = rng.choice(("email", "marketing", "address", "phone"))
        if choice == "email":
            return {"email": f"{customer['first_name']}.{customer['last_name']}{rng.randint(100, 999)}@gmx.ch".lower()}
        if choice == "marketing":
            return {"accepts_marketing": not customer["accepts_marketing"]}
        if choice == "address":
            return {"street": rng.choice(people.streets), "zip": rng.choice(people.postcodes),
                    "city": rng.choice(people.cities)}
        return {"phone": rng.choice(people.phones)}

    @staticmethod
    def _item(doc: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
        columns = {"created": doc["created_at"], "updated": doc["updated_at"], "number": int(doc["order_number"][2:])}
        return doc["id"], doc, columns, {"customer": [doc["customer"]["id"]]}

    def create_order(self, data: dict[str, Any]) -> dict[str, Any]:
        """A new order stamped with the sandbox clock; ``data`` may set documented fields, a ``customer``
        (a dict of customer fields; ``{"id": ...}`` of an existing customer reuses it) or ``order_lines``."""
        check_fields(data, CONTROL)
        now = self.now()
        number = int(self.store.scalar("SELECT coalesce(max(number), ?) FROM orders", [FIRST_NUMBER - 1])) + 1
        customer_data = data.get("customer") or {}
        existing = self.store.get("customers", customer_data.get("id")) if customer_data.get("id") else None
        customer = existing or self.faker.customer(now)
        customer.update({k: v for k, v in customer_data.items() if k in CUSTOMER_FIELDS})
        doc = self.faker.order(new_uuid(self.faker.rng), number, now, customer)
        doc.update({k: data[k] for k in ORDER_FIELDS if k in data})
        if isinstance(data.get("order_lines"), list):
            lines: list[dict[str, Any]] = []
            for line in data["order_lines"]:
                unit, quantity = int(line.get("unit_price_in_cents", 10000)), int(line.get("quantity", 1))
                lines.append({"product_id": line.get("product_id") or self.faker.products[0].id,
                              "name": line.get("name") or "Wertgutschein", "unit_price_in_cents": unit,
                              "quantity": quantity, "total_price_in_cents": unit * quantity})
            doc["order_lines"] = lines
        recompute_total(doc)
        if isinstance(data.get("order_lines"), list) or "discount_in_cents" in data:
            doc["payments"] = self.faker.payments(doc["grand_total_in_cents"], doc["location"])
        if isinstance(data.get("payments"), list):
            doc["payments"] = data["payments"]
        self.store.put("customers", customer["id"], customer, {})
        self.store.put_many("orders", [self._item(doc)])
        return doc

    def update_order(self, order_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Apply documented events: ``{"cancel": true}``, ``{"cancel_line": 0}`` (index in ``order_lines``),
        ``{"customer": {...}}``; an empty body applies one of them at random. Other keys change nothing."""
        doc = self.store.get("orders", order_id)
        if doc is None:
            return None
        check_fields(data, CONTROL)
        stamp = wall_clock(self.now())
        if not data:
            rng = self.faker.rng
            kinds = ["customer"] + (["cancel"] if doc["status"] == "completed" else []) + \
                (["cancel_line"] if len(doc["order_lines"]) > 1 else [])
            kind = rng.choice(kinds)
            if kind == "customer":
                data = {"customer": self.random_customer_change(rng, doc["customer"])}
            else:
                data = {kind: True if kind == "cancel" else rng.randrange(len(doc["order_lines"]))}
        if isinstance(data.get("customer"), dict):
            self.update_customer(doc["customer"]["id"], data["customer"])
            doc = self.store.get("orders", order_id) or doc
        line = data.get("cancel_line")
        if line is not None and not isinstance(line, bool) and cancel_line(doc, int(line), stamp):
            self.store.put_many("orders", [self._item(doc)])
        if data.get("cancel") and cancel(doc, stamp):
            self.store.put_many("orders", [self._item(doc)])
        return doc

    def update_customer(self, customer_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Change documented customer values; every order of the customer shows them and moves ``updated_at``."""
        customer = self.store.get("customers", customer_id)
        if customer is None:
            return None
        check_fields(data, CUSTOMER_CONTROL)
        before = dict(customer)
        apply_customer_change(customer, data, wall_clock(self.now()))
        if customer == before:
            return customer
        stamp = wall_clock(self.now())
        orders = self.store.find("orders", [self.store.tag_filter("orders", "customer")], [customer_id])
        for doc in orders:
            doc["customer"] = dict(customer)
            doc["updated_at"] = stamp
        self.store.put("customers", customer_id, customer, {})
        self.store.put_many("orders", [self._item(doc) for doc in orders])
        return customer

    def live_change(self, order_id: str, kind: str, rng: random.Random) -> None:
        """e-guma orders are paid when made: ``pay`` and ``change`` are one of its documented changes (a line
        cancelled, the customer changed), ``cancel`` cancels the order; each moves ``updated_at``."""
        self.update_order(order_id, {"cancel": True} if kind == "cancel" else {})

    def demo_settings(self, base_url: str) -> dict[str, Any]:
        return {"type": self.name, "base_url": f"{base_url}/v1", "api_key": self.options.api_key}

    # --- HTTP -------------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/vouchers/orders.json", self.endpoint(self.list_orders), methods=["GET"]),
            Route("/v1/vouchers/orders/{id}.json", self.endpoint(self.get_order), methods=["GET"]),
        ]

    def credential(self, request: Request) -> str | None:
        return request.query_params.get("apikey")

    def authenticate(self, request: Request) -> None:
        key = self.credential(request)
        if not key:
            raise ApiError(400, "Bad Request: missing parameter apikey")
        if key != self.options.api_key:
            raise ApiError(401, "Unauthorized: invalid API key")

    async def list_orders(self, request: Request) -> Response:
        where, params = parse_filters(request)
        docs = self.store.find("orders", where, params, "number")
        if self.ms_per_order and docs:
            await pause(len(docs) * self.ms_per_order / 1000)
        return JSON(docs)

    async def get_order(self, request: Request) -> Response:
        doc = self.store.get("orders", request.path_params["id"])
        if doc is None:
            raise ApiError(404, "Order not found")
        return JSON(doc)

    def security_schemes(self, base_url: str) -> dict[str, Any]:
        return {"apikey": {"type": "apiKey", "in": "query", "name": "apikey",
                           "description": "the shop's API key (missing: 400, wrong: 401)"}}

    def example_id(self) -> dict[str, Any]:
        """An order that exists, as the single-order operation's example: a client generating requests from the
        document (schemathesis, Prism) then reads a real order, not only 404s."""
        first = self.store.find_raw("orders", "id", order_by="number", limit=1)
        return {"example": first[0]} if first else {}

    def openapi_paths(self) -> dict[str, Any]:
        date: dict[str, Any] = {"pattern": f"^{CALENDAR_DATE}T{CLOCK_TIME}$", "example": EXAMPLE,
                                "empty": False}  # an empty value is refused: 400 "Missing value"
        filters = [
            query_param("created_at_after", "string", "orders created at or after (local time, no zone)", **date),
            query_param("created_at_before", "string", "orders created before (local time, no zone)", **date),
            query_param("updated_at_after", "string", "orders modified at or after (local time, no zone)", **date),
            query_param("updated_at_before", "string", "orders modified before (local time, no zone)", **date),
        ]
        errors = error_answers(self.error_style, {"400": "missing or malformed parameter",
                                                  "401": "no valid API key"})
        order = order_schema()
        return {
            "/v1/vouchers/orders.json": {"get": {
                "summary": "Retrieves a list of orders (every match, no pagination)",
                "operationId": "listOrders", "parameters": filters,
                "responses": {"200": json_answer("the orders", {"type": "array", "items": order}), **errors},
            }},
            "/v1/vouchers/orders/{id}.json": {"get": {
                "summary": "Retrieves one order",
                "operationId": "getOrder",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                                **self.example_id()}],
                "responses": {"200": json_answer("the order", order),
                              "404": self.error_style.content("no such order"), **errors},
            }},
        }


def order_schema() -> dict[str, Any]:
    """The documented record, inline (the shared OpenAPI document has no ``components``)."""
    text, cents, flag = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
    stamp = {"type": "string", "example": EXAMPLE, "description": "local time, no zone"}
    customer = {"type": "object", "properties": {
        "id": text, "title": {"type": "string", "enum": ["Mr", "Mrs", "Company"]}, "first_name": text,
        "last_name": text, "company": text, "street": text, "zip": text, "city": text, "country": text,
        "email": text, "accepts_marketing": flag, "double_opt_in_confirmed_at": {**stamp, "type": ["string", "null"]},
        "phone": text}}
    line = {"type": "object", "properties": {"product_id": text, "name": text, "unit_price_in_cents": cents,
                                             "quantity": cents, "total_price_in_cents": cents}}
    pay = {"type": "object", "properties": {"payment_id": text, "name": text, "amount_in_cents": cents,
                                            "is_complimentary": flag}}
    return {"type": "object", "properties": {
        "id": text, "created_at": stamp, "updated_at": stamp, "order_number": text,
        "status": {"type": "string", "enum": ["completed", "cancelled"]}, "currency": text, "language": text,
        "location": {"type": "string", "enum": ["web", "local", "import"]}, "discount_in_cents": cents,
        "grand_total_in_cents": cents, "customer": customer, "order_lines": {"type": "array", "items": line},
        "payments": {"type": "array", "items": pay}}}


def cancel(doc: dict[str, Any], stamp: str) -> bool:
    """The order gets cancelled (a documented event); False if it already was."""
    if doc["status"] == "cancelled":
        return False
    doc["status"] = "cancelled"
    doc["updated_at"] = stamp
    return True


def cancel_line(doc: dict[str, Any], index: int, stamp: str) -> bool:
    """A voucher line gets cancelled: it leaves the order, the total drops and a refund (a negative payment in the
    first payment's method) keeps the payments equal to the total (**assumption**, docs/eguma.md); cancelling the
    only line left cancels the order instead (the line stays). False if there is no such line."""
    if not 0 <= index < len(doc["order_lines"]):
        return False
    if len(doc["order_lines"]) == 1:
        return cancel(doc, stamp)
    before = int(doc["grand_total_in_cents"])
    del doc["order_lines"][index]
    recompute_total(doc)
    refund = before - int(doc["grand_total_in_cents"])
    if refund and doc["payments"]:  # paid back in the way it was paid: the payments still add up to the total
        first = doc["payments"][0]
        doc["payments"].append({**first, "amount_in_cents": -refund})
    doc["updated_at"] = stamp
    return True


def apply_customer_change(customer: dict[str, Any], data: dict[str, Any], stamp: str) -> dict[str, Any]:
    """Documented customer values from ``data``; consenting to marketing stamps the double opt-in now."""
    for key in CUSTOMER_FIELDS:
        if key in data:
            customer[key] = data[key]
    if "accepts_marketing" in data and "double_opt_in_confirmed_at" not in data:
        customer["double_opt_in_confirmed_at"] = stamp if customer["accepts_marketing"] else None
    return customer


# What the control endpoints may set, typed as the API serves it (a wrong type is a 422 naming the field).
CUSTOMER_CONTROL: dict[str, Schema] = {k: v for k, v in order_schema()["properties"]["customer"]["properties"].items()
                                       if k != "id"}
CONTROL: dict[str, Schema] = {
    **{k: v for k, v in order_schema()["properties"].items() if k in (*ORDER_FIELDS, "order_lines", "payments")},
    "customer": {"type": "object", "properties": CUSTOMER_CONTROL}, "cancel": {"type": "boolean"},
    "cancel_line": {"type": "integer"}}
