"""The Frontcore v2 sandbox: ``/v2/orders``, ``/v2/orders/{id}`` and ``/v2/customers`` as documented.

Filter semantics, as we read the vendor's documentation of the two lists:

* dates are ``yyyy-mm-dd`` or ``yyyy-mm-dd hh:mm:ss`` in Oslo local time; a bare date is its midnight;
* ``*_min`` keeps items at or after the instant, ``*_max`` items strictly before it (**assumption**);
* an order never updated has ``updated_at: null`` and therefore never matches ``updated_at_min/max``;
* ``exported`` defaults to false, which *excludes* orders that have been exported;
* ``user_data`` (default false) adds ``users`` to every line;
* ``since_id`` keeps ids greater than the given one; orders come in descending id order, customers in
  the vendor's unsorted order (a fixed pseudo-random order here);
* the related endpoints (named, not described, by the vendor): ``/v2/customers/contacts?customer_id=`` lists the
  people who booked for the customer (each order's ``first_user``, by id; **assumption**), ``/v2/orders/products``
  the products order lines refer to (a line's ``product``, by id); both page with ``limit`` and ``page``.

Option ``-o string_ids=true``: ids and booleans are sent as strings (``"27000"``, ``"1"``), as some clients in the
wild report; the OpenAPI document then allows both forms.
"""

from __future__ import annotations

import random
import re
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ordersync.sandbox.app import JSON, Sandbox
from ordersync.sandbox.docstore import Item
from ordersync.sandbox.errors import ApiError, BadParam, ErrorField
from ordersync.sandbox.frontcore.fake import OSLO, FrontcoreFaker, local_iso, product_of
from ordersync.sandbox.openapi import error_answers, json_answer, query_param
from ordersync.sandbox.params import CALENDAR_DATE, CLOCK_TIME, bool_param, datetime_param, db_time, int_param
from ordersync.sandbox.schema import (
    ANY,
    BOOLEAN,
    INTEGER,
    NUMBER,
    STRING,
    ControlError,
    Schema,
    array,
    check_fields,
    nullable,
    obj,
)

ORDER_INCLUDES = ("lines.database_relations.course", "lines.database_relations.participants", "campaign")
CUSTOMER_INCLUDES = ("employees",)
MAX_LIMIT = 250
DEFAULT_LIMIT = 75
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")
DATE_HINT = "yyyy-mm-dd or yyyy-mm-dd hh:mm:ss"
EDITABLE_ORDER_FIELDS = ("is_paid", "payment_method", "your_reference", "invoice_email")
OPTIONS = ("string_ids",)
DATE_FILTERS = {"created_at": "created", "updated_at": "updated", "exported_at": "exported"}


def parse_filter_date(name: str, value: str) -> str:
    """A local Oslo date filter as the UTC text of the index; 400 for anything that is not a real instant."""
    if not _DATE.match(value):
        raise BadParam(name, f"Invalid date for {name}: '{value}'. Use {DATE_HINT}")
    moment = datetime_param(name, value if " " in value else value + " 00:00:00", DATE_HINT)
    try:
        return db_time(moment.replace(tzinfo=OSLO)) or ""
    except OverflowError:  # year 1 in Oslo is before year 1 in UTC
        raise BadParam(name, f"Invalid date for {name}: '{value}' is out of range") from None


def parse_includes(request: Request, allowed: tuple[str, ...]) -> set[str]:
    # an empty value asks for nothing, as an absent parameter (the OpenAPI document allows it)
    values = [v for v in request.query_params.getlist("include[]") + request.query_params.getlist("include") if v]
    for value in values:
        if value not in allowed:
            raise BadParam("include[]", f"Unsupported include '{value}'. Supported: {', '.join(allowed)}")
    return set(values)


def include_param(allowed: tuple[str, ...]) -> dict[str, Any]:
    """``include[]``, repeated per path; an empty value asks for nothing."""
    return {"name": "include[]", "in": "query", "allowEmptyValue": True, "style": "form", "explode": True,
            "schema": {"type": "array", "items": {"enum": list(allowed)}}}


def path_id(request: Request) -> int:
    """The ``{id}`` of the path: a number, else 400."""
    return int_param("id", request.path_params["id"], 0) or 0


class FrontcoreSandbox(Sandbox):
    name = "frontcore"
    title = "Frontcore API v2"
    orders_path = "/v2/orders"
    error_style = ErrorField()
    requests_per_second = 5.0  # documented: 5 requests per second per account

    # --- data -------------------------------------------------------------------------------------------
    def define(self) -> None:
        unknown = set(self.options.extra) - set(OPTIONS)
        if unknown:
            raise ValueError(f"unknown frontcore sandbox option(s) {', '.join(sorted(unknown))}; known: string_ids")
        flag = str(self.options.extra.get("string_ids", "false")).lower()
        if flag not in ("true", "false", "1", "0"):
            raise ValueError(f"frontcore sandbox option string_ids is true or false, not {flag!r}")
        self.string_ids = flag in ("true", "1")
        # "view": the order as a list shows it by default (no includes, no user data), pre-rendered JSON, so that a
        # page is a concatenation of stored bytes; kept current when the order or its customer changes.
        self.store.define("orders", {"created": "TEXT", "updated": "TEXT", "exported": "TEXT", "customer": "INTEGER",
                                     "view": "BLOB"}, tags=("course",))
        self.store.define("customers", {"sort_key": "INTEGER", "created": "TEXT", "updated": "TEXT"})
        self.store.define("courses", {})
        self.store.define("campaigns", {})
        self._faker: FrontcoreFaker | None = None

    @property
    def faker(self) -> FrontcoreFaker:
        if self._faker is None:
            self._faker = FrontcoreFaker(random.Random(self.seed + 1), self.seed)
            self._faker.next_user_id = max(self._faker.next_user_id, 200000 + self.store.count("orders") * 10)
            self._faker.next_participant_id = self._faker.next_user_id
            self._faker.next_line_id = self._faker.next_user_id
        return self._faker

    def generate(self, rng: random.Random, orders: int, anchor: datetime) -> None:
        faker = FrontcoreFaker(rng, self.seed)
        self._faker = faker
        self.store.put_many("courses", [(c.id, c.__dict__, {}, {}) for c in faker.courses])
        self.store.put_many("campaigns", [(i, faker.campaign(i), {}, {}) for i in range(1, 5)])
        start, end = faker.history(orders, anchor)
        customer_count = max(5, orders // 4)
        customers = []
        for n in range(customer_count):
            created = faker.moment(start, end)
            updated = faker.moment(created, end)
            customers.append(faker.customer(32714 + n, created, updated))
        by_id = {c["id"]: c for c in customers}
        self.store.put_many("customers", (self._customer_item(c, rng.randint(0, 2**31)) for c in customers))
        moments: list[datetime] = sorted(faker.moment(start, end) for _ in range(orders))
        items: list[Item] = []
        for n, created in enumerate(moments):
            changed = faker.moment(created, end) if rng.random() < 0.6 else None
            exported = faker.moment(created, end) if rng.random() < 0.3 else None
            customer = rng.choice(customers) if rng.random() < 0.65 else None
            campaign = rng.randint(1, 4) if rng.random() < 0.15 else None
            doc = faker.order(27000 + n, created, customer, changed, exported, campaign)
            items.append(self._order_item(doc, by_id))
            if len(items) >= 5000:
                self.store.put_many("orders", items)
                items = []
        self.store.put_many("orders", items)

    def _order_item(self, doc: dict[str, Any], customers: dict[int, dict[str, Any]] | None = None) -> Item:
        """The stored order, its index columns and its default view (with the customer as it is now)."""
        customer_id = doc["customer"]["id"] if doc.get("customer") else None
        customer = None
        if customer_id is not None:
            customer = (customers or {}).get(customer_id) or self.store.get("customers", customer_id)
        columns = {
            "created": _db(doc["created_at"]),
            "updated": _db(doc["updated_at"]),
            "exported": _db(doc["exported_at"]),
            "customer": customer_id,
            "view": orjson.dumps(default_view(doc, customer)),
        }
        courses = {rel["course_id"] for line in doc["lines"] for rel in line["database_relations"]}
        return doc["id"], doc, columns, {"course": sorted(courses)}

    def _customer_item(self, doc: dict[str, Any], sort_key: int) -> Item:
        columns = {"sort_key": sort_key, "created": _db(doc["created_at"]), "updated": _db(doc["updated_at"])}
        return doc["id"], doc, columns, {}

    def create_order(self, data: dict[str, Any]) -> dict[str, Any]:
        check_fields(data, ORDER_CONTROL)
        now = self.now()
        new_id = int(self.store.scalar("SELECT coalesce(max(id), 26999) FROM orders")) + 1
        customer = None
        if data.get("customer_id") is not None:
            customer = self.store.get("customers", data["customer_id"])
            if customer is None:
                raise ControlError("customer_id", f"no customer {data['customer_id']}")
        doc = self.faker.order(new_id, now, customer, None, None, None)
        for key in EDITABLE_ORDER_FIELDS:
            if key in data:
                doc[key] = data[key]
        self.store.put_many("orders", [self._order_item(doc)])
        return doc

    def update_order(self, order_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        doc = self.store.get("orders", _as_id(order_id))
        if doc is None:
            return None
        check_fields(data, ORDER_CONTROL)
        now = local_iso(self.now())
        changed: dict[str, Any] = {k: data[k] for k in EDITABLE_ORDER_FIELDS if k in data}
        if not data:
            changed = {"is_paid": not doc["is_paid"]}
        doc.update(changed)
        if data.get("exported"):
            doc["exported_at"] = now
        if changed or not data.get("exported"):
            doc["updated_at"] = now
        self.store.put_many("orders", [self._order_item(doc)])
        return doc

    def create_customer(self, data: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        new_id = int(self.store.scalar("SELECT coalesce(max(id), 32713) FROM customers")) + 1
        doc = self.faker.customer(new_id, now, now)
        check_fields(data, CUSTOMER_CONTROL)
        doc.update({k: v for k, v in data.items() if k in doc and k != "id"})
        self.store.put_many("customers", [self._customer_item(doc, self.faker.rng.randint(0, 2**31))])
        return doc

    def update_customer(self, customer_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        cid = _as_id(customer_id)
        doc = self.store.get("customers", cid)
        if doc is None:
            return None
        check_fields(data, CUSTOMER_CONTROL)
        sort_key = self.store.scalar("SELECT sort_key FROM customers WHERE id = ?", [cid])
        doc.update({k: v for k, v in data.items() if k in doc and k not in ("id", "created_at")})
        if not data:
            doc["note"] = f"Oppdatert {local_iso(self.now())}"
        doc["updated_at"] = local_iso(self.now())
        self.store.put_many("customers", [self._customer_item(doc, sort_key)])
        orders = self.store.find("orders", ["customer = ?"], [cid])  # their views show the customer as it is now
        self.store.put_many("orders", [self._order_item(order, {doc["id"]: doc}) for order in orders])
        return doc

    def live_change(self, order_id: str, kind: str, rng: random.Random) -> None:
        """Paid, a reference added; Frontcore documents no cancellation, so a shop's last step is the export to
        accounting (``exported_at`` moves, ``updated_at`` does not, and ``exported=false`` hides the order)."""
        changes: dict[str, dict[str, Any]] = {
            "pay": {"is_paid": True}, "change": {"your_reference": f"PO-{rng.randint(1000, 9999)}"},
            "cancel": {"exported": True}}
        self.update_order(order_id, changes[kind])

    def demo_settings(self, base_url: str) -> dict[str, Any]:
        return {"type": self.name, "base_url": f"{base_url}/v2", "api_key": self.options.api_key}

    # --- HTTP -------------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v2/orders", self.endpoint(self.list_orders), methods=["GET"]),
            # the related endpoints before /v2/orders/{id}, which would take "products" for an order id
            Route("/v2/orders/products", self.endpoint(self.list_products), methods=["GET"]),
            Route("/v2/orders/{id}", self.endpoint(self.get_order), methods=["GET"]),
            Route("/v2/customers", self.endpoint(self.list_customers), methods=["GET"]),
            Route("/v2/customers/contacts", self.endpoint(self.list_contacts), methods=["GET"]),
        ]

    def credential(self, request: Request) -> str | None:
        return request.headers.get("x-api-key")

    def authenticate(self, request: Request) -> None:
        if self.credential(request) != self.options.api_key:
            raise ApiError(401, "Wrong API Key")

    async def list_orders(self, request: Request) -> Response:
        q = request.query_params
        limit, offset = _paging(request)
        includes = parse_includes(request, ORDER_INCLUDES)
        user_data = bool_param("user_data", q.get("user_data"))
        where, params = self._common_filters(request, ("created_at", "updated_at", "exported_at"))
        course_id = int_param("course_id", q.get("course_id"))
        if course_id is not None:
            where.append(self.store.tag_filter("orders", "course", common=True))
            params.append(course_id)
        if not bool_param("exported", q.get("exported")):
            where.append("+exported IS NULL")  # "+": not selective, so scan by id rather than sort 70% of orders
        if not user_data and not includes and not self.string_ids:  # the default view: stored bytes, as they are
            views = self.store.find_raw("orders", "view", where, params, "id DESC", limit, offset)
            return Response(json_array(views), media_type="application/json")
        docs = self.store.find("orders", where, params, "id DESC", limit, offset)
        return self.answer(self.render_orders(docs, user_data, includes))

    async def get_order(self, request: Request) -> Response:
        includes = parse_includes(request, ORDER_INCLUDES)
        user_data = bool_param("user_data", request.query_params.get("user_data"))
        doc = self.store.get("orders", path_id(request))
        if doc is None:
            raise ApiError(404, "Order not found")
        return self.answer(self.render_orders([doc], user_data, includes)[0])

    async def list_customers(self, request: Request) -> Response:
        limit, offset = _paging(request)
        includes = parse_includes(request, CUSTOMER_INCLUDES)
        where, params = self._common_filters(request, ("created_at", "updated_at"))
        docs = self.store.find("customers", where, params, "sort_key", limit, offset)
        return self.answer([self.render_customer(doc, "employees" in includes) for doc in docs])

    async def list_contacts(self, request: Request) -> Response:
        """The people who booked for a customer (each order's ``first_user``), by id (**assumption**)."""
        limit, offset = _paging(request)
        raw = request.query_params.get("customer_id")
        if not raw:
            raise ApiError(400, "Missing field(s): customer_id")
        customer_id = int_param("customer_id", raw)
        if self.store.get("customers", customer_id) is None:
            raise ApiError(404, "Customer not found")
        people: dict[int, dict[str, Any]] = {}
        for order in self.store.find("orders", ["customer = ?"], [customer_id]):
            people.setdefault(order["first_user"]["id"], order["first_user"])
        return self.answer([people[i] for i in sorted(people)][offset:offset + limit])

    async def list_products(self, request: Request) -> Response:
        """The products order lines refer to, as a line's ``product`` shows them, by id."""
        limit, offset = _paging(request)
        courses = sorted(self.store.find("courses"), key=lambda c: c["product_id"])
        return self.answer([product_of(course) for course in courses][offset:offset + limit])

    def answer(self, content: Any) -> Response:
        """A JSON answer, with ids and booleans as strings when the sandbox is told to send them so."""
        return JSON(stringify(content) if self.string_ids else content)

    def _common_filters(self, request: Request, dates: tuple[str, ...]) -> tuple[list[str], list[Any]]:
        q = request.query_params
        where: list[str] = []
        params: list[Any] = []
        since_id = int_param("since_id", q.get("since_id"))
        if since_id is not None:
            where.append("id > ?")
            params.append(since_id)
        for field in dates:
            column = DATE_FILTERS[field]
            for suffix, op in (("min", ">="), ("max", "<")):
                value = q.get(f"{field}_{suffix}")
                if value:
                    where.append(f"{column} {op} ?")
                    params.append(parse_filter_date(f"{field}_{suffix}", value))
        return where, params

    # --- rendering --------------------------------------------------------------------------------------
    def render_customer(self, doc: dict[str, Any], with_employees: bool) -> dict[str, Any]:
        if doc.get("type") != "Private" and not with_employees:
            doc.pop("employees", None)
        elif "employees" not in doc:
            doc = _insert_after(doc, "type", "employees", [])
        return doc

    def render_orders(self, docs: list[dict[str, Any]], user_data: bool, includes: set[str]) -> list[dict[str, Any]]:
        """Orders as the API shows them: the customer as it is now, and only what was asked for."""
        customer_ids = sorted({d["customer"]["id"] for d in docs if d.get("customer")})
        customers: dict[int, dict[str, Any]] = {}
        if customer_ids:
            marks = ", ".join("?" for _ in customer_ids)
            for c in self.store.find("customers", [f"id IN ({marks})"], customer_ids):
                c.pop("employees", None)
                customers[c["id"]] = c
        courses: dict[int, dict[str, Any]] = {}
        if "lines.database_relations.course" in includes:
            courses = {c["id"]: c for c in self.store.find("courses")}
        campaigns: dict[int, dict[str, Any]] = {}
        if "campaign" in includes:
            campaigns = {c["id"]: c for c in self.store.find("campaigns")}
        rendered = []
        for doc in docs:
            if doc.get("customer"):
                doc["customer"] = customers.get(doc["customer"]["id"])
            if "campaign" in includes:
                doc = _insert_after(doc, "idCampaign", "campaign", campaigns.get(doc["idCampaign"] or -1))
            for line in doc["lines"]:
                if not user_data:
                    line.pop("users", None)
                for relation in line["database_relations"]:
                    if courses:
                        course = courses.get(relation["course_id"], {})
                        relation["course"] = {"id": relation["course_id"], "title": course.get("title"),
                                              "coursedate_id": relation["coursedate_id"]}
                    if "lines.database_relations.participants" in includes:
                        relation["participant"] = {"id": relation["participant_id"], "user_id": relation["user_id"],
                                                   "coursedate_id": relation["coursedate_id"], "status": "Påmeldt"}
            rendered.append(doc)
        return rendered

    def security_schemes(self, base_url: str) -> dict[str, Any]:
        return {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}

    def openapi_paths(self) -> dict[str, Any]:
        dates = [
            query_param(f"{f}_{s}", "string", f"{f} {'at or after' if s == 'min' else 'before'} this Oslo time "
                        f"({DATE_HINT})", pattern=f"^{CALENDAR_DATE}( {CLOCK_TIME})?$")
            for f in ("created_at", "updated_at", "exported_at") for s in ("min", "max")
        ]
        paging = [
            query_param("limit", "integer", "Amount of results", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT),
            query_param("page", "integer", "Page to show", default=1, minimum=1, maximum=(2**63 - 1) // MAX_LIMIT),
            query_param("since_id", "integer", "Only ids greater than this", minimum=0, maximum=2**63 - 1),
        ]
        order_params = [
            *paging, *dates,
            query_param("course_id", "integer", "Orders with at least one line for this course", minimum=0,
                        maximum=2**63 - 1),
            query_param("user_data", "boolean", "Add users to each line", default=False),
            query_param("exported", "boolean", "Include exported orders", default=False),
            include_param(ORDER_INCLUDES),
        ]
        customer_params = [
            *paging, *dates[:4],
            include_param(CUSTOMER_INCLUDES),
        ]
        schemas = {"order": order_schema(), "customer": customer_schema(), "user": user_schema(),
                   "product": product_schema()}
        if self.string_ids:
            schemas = {name: loosen(schema) for name, schema in schemas.items()}
        order = schemas["order"]
        errors = error_answers(self.error_style, {"400": "bad parameter (Invalid ...)", "401": "Wrong API Key"})

        def listing(what: str, schema: Schema) -> dict[str, Any]:
            return {"200": json_answer(what, {"type": "array", "items": schema}), **errors}

        one_order = [{"name": "id", "in": "path", "required": True,
                      "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}},
                     *(p for p in order_params if p["name"] in ("user_data", "include[]"))]
        contacts = [{**query_param("customer_id", "integer", "The customer", empty=False, minimum=0,
                                   maximum=2**63 - 1), "required": True}, *paging[:2]]
        return {
            "/v2/orders": {"get": {"summary": "Download orders", "operationId": "listOrders",
                                   "parameters": order_params, "responses": listing("newest first", order)}},
            "/v2/orders/products": {"get": {
                "summary": "The products order lines refer to (by id)", "operationId": "listProducts",
                "parameters": paging[:2], "responses": listing("the products", schemas["product"])}},
            "/v2/orders/{id}": {"get": {
                "summary": "One order", "operationId": "getOrder", "parameters": one_order,
                "responses": {"200": json_answer("the order", order), **errors,
                              "404": self.error_style.content("Order not found")}}},
            "/v2/customers": {"get": {
                "summary": "Download customers", "operationId": "listCustomers", "parameters": customer_params,
                "responses": listing("unsorted", schemas["customer"])}},
            "/v2/customers/contacts": {"get": {
                "summary": "The people who booked for a customer (by id)", "operationId": "listContacts",
                "parameters": contacts,
                "responses": {**listing("the contacts", schemas["user"]),
                              "404": self.error_style.content("Customer not found")}}},
        }


def json_array(items: list[bytes]) -> bytes:
    """``[a,b,...]`` from JSON texts, copying each byte once (a page is about 850 kB)."""
    parts = [b","] * (2 * len(items) + 1)
    parts[0], parts[-1] = b"[", b"]"
    parts[1:-1:2] = items
    return b"".join(parts) if items else b"[]"


def default_view(doc: dict[str, Any], customer: dict[str, Any] | None) -> dict[str, Any]:
    """``doc`` as a list shows it without includes or user data: the current customer (no employees), no users."""
    view = dict(doc)
    if doc.get("customer"):
        view["customer"] = {k: v for k, v in customer.items() if k != "employees"} if customer else None
    view["lines"] = [{k: v for k, v in line.items() if k != "users"} for line in doc["lines"]]
    return view


def _paging(request: Request) -> tuple[int, int]:
    """``limit`` and the offset of ``page``; an offset past what SQLite can count is refused."""
    q = request.query_params
    limit = int_param("limit", q.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT) or DEFAULT_LIMIT
    page = int_param("page", q.get("page"), 1, 1, (2**63 - 1) // MAX_LIMIT) or 1
    return limit, (page - 1) * limit


def _db(value: str | None) -> str | None:
    return db_time(datetime.fromisoformat(value)) if value else None


def _as_id(value: str) -> int | str:
    return int(value) if str(value).isdigit() else value


def _insert_after(doc: dict[str, Any], after: str, key: str, value: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for k, v in doc.items():
        if k != key:
            result[k] = v
        if k == after:
            result[key] = value
    if key not in result:
        result[key] = value
    return result


# --- response schemas, written from the documentation's samples ------------------------------------------------
N_STR = nullable(STRING)


def _address(with_phone: bool = False) -> Schema:
    fields = {k: N_STR for k in ("address", "address_2", "address_3", "zipcode", "city")}
    return obj({**fields, "phone": N_STR} if with_phone else fields)


def user_schema(with_reference: bool = False) -> Schema:
    """``first_user``, a line's ``users[]`` (those add ``invoice_reference``) and a customer's contacts."""
    fields: dict[str, Schema] = {
        "id": INTEGER, "firstname": STRING, "lastname": STRING, "date_of_birth": N_STR, "email": N_STR,
        "phone": N_STR, "company": N_STR, "position": N_STR, "invoice_address": _address(True),
        "home_address": _address(True), "work_address": _address(True)}
    if with_reference:
        fields["invoice_reference"] = N_STR
    return obj(fields)


def product_schema() -> Schema:
    return obj({"id": INTEGER, "item_number": STRING, "title": STRING, "title_label": N_STR, "price": NUMBER,
                "currency": STRING, "is_main_product": BOOLEAN, "vat_percentage": NUMBER})


def customer_schema(employees: bool = True) -> Schema:
    """A customer as ``/v2/customers`` and an order's ``customer`` show it; the sample fills every text field."""
    head: dict[str, Schema] = {
        "id": INTEGER, "title": STRING, **{k: N_STR for k in (
            "department", "phone", "fax", "email", "webaddress", "orgnr", "invoice_email", "customer_reference_id",
            "customer_reference", "note")},
        "idStatus": STRING, "turnover": ANY, "idParentCustomer": nullable(INTEGER), "invoice_method": STRING,
        "country": obj({"id": INTEGER, "title": STRING, "code": STRING}), "status": STRING, "type": STRING}
    tail: dict[str, Schema] = {
        "duedate_days": INTEGER, "seller": ANY, "invoice_address": _address(), "post_address": _address(),
        "visit_address": _address(), "custom_properties": ANY, "created_at": STRING, "updated_at": N_STR}
    if not employees:
        return obj({**head, **tail})
    return obj({**head, "employees": array({"type": "object"}), **tail}, optional=("employees",))


def order_schema() -> Schema:
    """An order, with what ``include[]`` and ``user_data`` add marked optional."""
    relation = obj({
        "type": STRING, "participant_id": INTEGER, "coursedate_id": INTEGER, "user_id": INTEGER, "course_id": INTEGER,
        "course": obj({"id": INTEGER, "title": N_STR, "coursedate_id": INTEGER}),
        "participant": obj({"id": INTEGER, "user_id": INTEGER, "coursedate_id": INTEGER, "status": STRING})},
        optional=("course", "participant"))
    prices = ("price_at_order_per_item_vat_excluded", "discount_percent_at_order", "discount_amount_at_order",
              "discount_calculated_at_order", "price_at_invoice_per_item_vat_excluded", "discount_percent_at_invoice",
              "discount_calculated_at_invoice", "price_at_export_per_item_vat_excluded", "discount_percent_at_export",
              "discount_calculated_at_export")
    line = obj({
        "id": INTEGER, "currency": obj({"id": STRING, "title": STRING, "long_title": STRING}),
        **{k: NUMBER for k in prices}, "quantity": INTEGER, "database_relations": array(relation),
        "product": product_schema(), "users": array(user_schema(True)), "created_at": STRING, "updated_at": N_STR},
        optional=("users",))
    totals = ("total_amount_before_discounts", "total_amount_after_discounts", "total_amount_of_discounts",
              "total_amount_of_vat", "total_amount_incl_discounts_and_vat")
    campaign = obj({"id": INTEGER, "title": STRING, "code": STRING})
    return obj({
        "id": INTEGER, "title": STRING, "title_detailed": STRING, "is_paid": BOOLEAN, "payment_method": N_STR,
        "your_reference": N_STR, "booker": ANY, "gln_number": N_STR,
        "customer": nullable(customer_schema(employees=False)), "idCampaign": nullable(INTEGER),
        "campaign": nullable(campaign), "seller_id": nullable(INTEGER),
        **{k: N_STR for k in ("invoice_address", "invoice_address_2", "invoice_address_3", "invoice_zipcode",
                              "invoice_city", "invoice_email")},
        "first_user": user_schema(), "lines": array(line), "booker_admin_user": ANY, "webintegration_id": ANY,
        "custom_properties": ANY, "calculated_totals": obj({k: NUMBER for k in totals}), "exported_at": N_STR,
        "updated_at": N_STR, "created_at": STRING}, optional=("campaign",))


def is_id(key: str) -> bool:
    """The keys whose numbers some clients in the wild receive as strings: ``id``, ``*_id`` and ``idSomething``."""
    return key == "id" or key.endswith("_id") or (key.startswith("id") and key[2:3].isupper())


def stringify(value: Any) -> Any:
    """``value`` with ids and booleans as strings (``-o string_ids=true``): ``27000`` -> ``"27000"``, ``true`` ->
    ``"1"``, as clients in the wild report them."""
    if isinstance(value, dict):
        return {k: (str(v) if is_id(k) and isinstance(v, int) and not isinstance(v, bool) else stringify(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [stringify(v) for v in value]
    if isinstance(value, bool):
        return "1" if value else "0"
    return value


def loosen(schema: Schema, key: str = "") -> Schema:
    """The schema of :func:`stringify`'s output: an id may be a digit string, a boolean ``"0"`` or ``"1"``."""
    if "anyOf" in schema:
        return {**schema, "anyOf": [loosen(s, key) for s in schema["anyOf"]]}
    types = schema.get("type")
    names = set(types) if isinstance(types, list) else {types}
    if "boolean" in names:
        return {"anyOf": [schema, {"type": "string", "enum": ["0", "1"]}]}
    if "integer" in names and is_id(key):
        return {"anyOf": [schema, {"type": "string", "pattern": r"^\d+$"}]}
    result = dict(schema)
    if "properties" in schema:
        result["properties"] = {k: loosen(v, k) for k, v in schema["properties"].items()}
    if "items" in schema:
        result["items"] = loosen(schema["items"], key)
    return result


# What the control endpoints may set, typed as the API serves it (a wrong type is a 422 naming the field).
ORDER_CONTROL: dict[str, Schema] = {
    **{k: v for k, v in order_schema()["properties"].items() if k in EDITABLE_ORDER_FIELDS},
    "customer_id": nullable(INTEGER), "exported": BOOLEAN}
CUSTOMER_CONTROL: dict[str, Schema] = {k: v for k, v in customer_schema()["properties"].items()
                                       if k not in ("id", "created_at", "employees")}
