"""The Frontcore v2 sandbox: ``/v2/orders``, ``/v2/orders/{id}`` and ``/v2/customers`` as documented.

Filter semantics, as we read the documentation (see ``api-docs/frontcore-v2-*.txt`` and NOTES.md):

* dates are ``yyyy-mm-dd`` or ``yyyy-mm-dd hh:mm:ss`` in Oslo local time; a bare date is its midnight;
* ``*_min`` keeps items at or after the instant, ``*_max`` items strictly before it (**assumption**);
* an order never updated has ``updated_at: null`` and therefore never matches ``updated_at_min/max``;
* ``exported`` defaults to false, which *excludes* orders that have been exported;
* ``user_data`` (default false) adds ``users`` to every line;
* ``since_id`` keeps ids greater than the given one; orders come in descending id order, customers in
  the vendor's unsorted order (a fixed pseudo-random order here).
"""

from __future__ import annotations

import copy
import random
import re
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ordersync.apis.frontcore.fake import OSLO, FrontcoreFaker, local_iso
from ordersync.sandbox.app import JSON, Sandbox
from ordersync.sandbox.docstore import Item
from ordersync.sandbox.errors import ApiError, BadParam, ErrorField
from ordersync.sandbox.openapi import error_answers, infer_schema, json_answer, query_param
from ordersync.sandbox.params import CALENDAR_DATE, CLOCK_TIME, bool_param, datetime_param, db_time, int_param

ORDER_INCLUDES = ("lines.database_relations.course", "lines.database_relations.participants", "campaign")
CUSTOMER_INCLUDES = ("employees",)
MAX_LIMIT = 250
DEFAULT_LIMIT = 75
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")
DATE_HINT = "yyyy-mm-dd or yyyy-mm-dd hh:mm:ss"
EDITABLE_ORDER_FIELDS = ("is_paid", "payment_method", "your_reference", "invoice_email")
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
    values = request.query_params.getlist("include[]") + request.query_params.getlist("include")
    for value in values:
        if value not in allowed:
            raise BadParam("include[]", f"Unsupported include '{value}'. Supported: {', '.join(allowed)}")
    return set(values)


def path_id(request: Request) -> int:
    """The ``{id}`` of the path: a number, else 400."""
    return int_param("id", request.path_params["id"], 0) or 0


class FrontcoreSandbox(Sandbox):
    name = "frontcore"
    title = "Frontcore API v2"
    error_style = ErrorField()
    requests_per_second = 5.0  # documented: 5 requests per second per account

    # --- data -------------------------------------------------------------------------------------------
    def define(self) -> None:
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
            self._faker = FrontcoreFaker(random.Random(self.options.seed + 1), self.options.seed)
            self._faker.next_user_id = max(self._faker.next_user_id, 200000 + self.store.count("orders") * 10)
            self._faker.next_participant_id = self._faker.next_user_id
            self._faker.next_line_id = self._faker.next_user_id
        return self._faker

    def generate(self, rng: random.Random, orders: int, anchor: datetime) -> None:
        faker = FrontcoreFaker(rng, self.options.seed)
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
        now = self.now()
        new_id = int(self.store.scalar("SELECT coalesce(max(id), 26999) FROM orders")) + 1
        customer = None
        if data.get("customer_id") is not None:
            customer = self.store.get("customers", int(data["customer_id"]))
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
        doc.update({k: v for k, v in data.items() if k in doc and k != "id"})
        self.store.put_many("customers", [self._customer_item(doc, self.faker.rng.randint(0, 2**31))])
        return doc

    def update_customer(self, customer_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        cid = _as_id(customer_id)
        doc = self.store.get("customers", cid)
        if doc is None:
            return None
        sort_key = self.store.scalar("SELECT sort_key FROM customers WHERE id = ?", [cid])
        doc.update({k: v for k, v in data.items() if k in doc and k not in ("id", "created_at")})
        if not data:
            doc["note"] = f"Oppdatert {local_iso(self.now())}"
        doc["updated_at"] = local_iso(self.now())
        self.store.put_many("customers", [self._customer_item(doc, sort_key)])
        orders = self.store.find("orders", ["customer = ?"], [cid])  # their views show the customer as it is now
        self.store.put_many("orders", [self._order_item(order, {doc["id"]: doc}) for order in orders])
        return doc

    def demo_settings(self, base_url: str) -> dict[str, Any]:
        return {"type": self.name, "base_url": f"{base_url}/v2", "api_key": self.options.api_key}

    # --- HTTP -------------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v2/orders", self.endpoint(self.list_orders), methods=["GET"]),
            Route("/v2/orders/{id}", self.endpoint(self.get_order), methods=["GET"]),
            Route("/v2/customers", self.endpoint(self.list_customers), methods=["GET"]),
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
        if not user_data and not includes:  # the default view: stored bytes, nothing parsed or rendered
            views = self.store.find_raw("orders", "view", where, params, "id DESC", limit, offset)
            return Response(json_array(views), media_type="application/json")
        docs = self.store.find("orders", where, params, "id DESC", limit, offset)
        return JSON(self.render_orders(docs, user_data, includes))

    async def get_order(self, request: Request) -> Response:
        includes = parse_includes(request, ORDER_INCLUDES)
        user_data = bool_param("user_data", request.query_params.get("user_data"))
        doc = self.store.get("orders", path_id(request))
        if doc is None:
            raise ApiError(404, "Order not found")
        return JSON(self.render_orders([doc], user_data, includes)[0])

    async def list_customers(self, request: Request) -> Response:
        limit, offset = _paging(request)
        includes = parse_includes(request, CUSTOMER_INCLUDES)
        where, params = self._common_filters(request, ("created_at", "updated_at"))
        docs = self.store.find("customers", where, params, "sort_key", limit, offset)
        return JSON([self.render_customer(doc, "employees" in includes) for doc in docs])

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
            {"name": "include[]", "in": "query", "schema": {"type": "array", "items": {"enum": list(ORDER_INCLUDES)}},
             "style": "form", "explode": True},
        ]
        customer_params = [
            *paging, *dates[:4],
            {"name": "include[]", "in": "query", "schema": {"type": "array", "items": {"enum": ["employees"]}},
             "style": "form", "explode": True},
        ]
        docs = self.sample("orders", 150)
        order = infer_schema([*self.render_orders(copy.deepcopy(docs), False, set()),
                              *self.render_orders(docs, True, set(ORDER_INCLUDES))])
        customers = self.sample("customers", 150)
        customer = infer_schema([*(self.render_customer(c, False) for c in copy.deepcopy(customers)),
                                 *(self.render_customer(c, True) for c in customers)])
        errors = error_answers(self.error_style, {"400": "bad parameter (Invalid ...)", "401": "Wrong API Key"})
        listing = {"200": json_answer("a JSON array, newest first", {"type": "array", "items": order}), **errors}
        return {
            "/v2/orders": {"get": {"summary": "Download orders", "operationId": "listOrders",
                                   "parameters": order_params, "responses": listing}},
            "/v2/orders/{id}": {"get": {
                "summary": "One order", "operationId": "getOrder", "parameters": [
                    {"name": "id", "in": "path", "required": True,
                     "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}}, *order_params[-2:]],
                "responses": {"200": json_answer("the order", order), **errors,
                              "404": self.error_style.content("Order not found")}}},
            "/v2/customers": {"get": {
                "summary": "Download customers", "operationId": "listCustomers", "parameters": customer_params,
                "responses": {"200": json_answer("a JSON array, unsorted", {"type": "array", "items": customer}),
                              **errors}}},
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
