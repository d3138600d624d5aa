"""The Firespring sandbox: ``/websites/{website_id}/orders`` and ``/websites/{website_id}/orders/{id}``.

Semantics, as we read the vendor's documentation (assumptions are marked so in docs/firespring.md):

* HTTP Basic auth, the API key as user name and an empty password; 401 without it or with a wrong one;
* ``Firespring-Api-Version``: ``1`` or ``2`` (same shape); missing means ``1``; any other value is a 422;
* ``date_start`` keeps orders created at or after that day's 00:00 UTC, ``date_end`` orders created before that
  day's 00:00 UTC (the half-open range [date_start, date_end));
* ``sort`` (default ``date_created``) and ``direction`` (default ``desc``), ties broken by id in the same direction;
  orders without a user sort as if their user name were empty (first when ascending);
* ``search`` is a case-insensitive substring match on the message tracking number or the user's user name;
* ``includes`` expands the record (see :func:`render`); ``items.*`` implies ``items``, ``shipments.*`` ``shipments``;
* errors are ``{"errors": [{"code", "source", "detail"}]}`` (faults included); 404 for an unknown website or
  order; 403 for a website the key has no access to: the websites in ``OTHER_WEBSITES`` belong to another
  organisation, and a key given with ``-o limited_keys=KEY:4+19,KEY2:27`` reads only the websites listed.
"""

from __future__ import annotations

import base64
import binascii
import math
import random
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ordersync.sandbox.app import JSON, Sandbox
from ordersync.sandbox.errors import ApiError, BadParam, ErrorList
from ordersync.sandbox.firespring.fake import STATUSES, WEBSITES, FirespringFaker, iso
from ordersync.sandbox.openapi import error_answers, json_answer, query_param
from ordersync.sandbox.params import choice_param, db_time, int_param
from ordersync.sandbox.schema import (
    BOOLEAN,
    INTEGER,
    NUMBER,
    STRING,
    Schema,
    array,
    check_fields,
    nullable,
    obj,
    one_of_id_or,
)

INCLUDES = (
    "additional_information", "billing_address", "items", "items.attributes", "items.portal",
    "items.print_ready_files", "message", "notes", "payment_transactions", "portal", "promo_code", "shipments",
    "shipments.shipping_address", "shipments.shipping_carrier", "shipments.shipping_method", "user",
)
SORTS = {"date_created": "created", "message.message_tracking_number": "tracking", "user.username": "username"}
MAX_COUNT = 100
MAX_PAGE = (2**63 - 1) // MAX_COUNT
VERSIONS = ("1", "2")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Top-level fields that are absent unless included (the rest are always there, ids or objects).
LIST_INCLUDES = ("additional_information", "billing_address", "items", "notes", "payment_transactions", "shipments")
LIFECYCLE = {"pending_approval": "new", "new": "processing", "processing": "shipped", "backordered": "processing",
             "shipped": "completed", "completed": "completed", "denied": "denied", "canceled": "canceled"}


# What the control endpoints may set, typed (a wrong type is a 422 naming the field).
CONTROL: dict[str, Schema] = {
    "website_id": {"type": "integer", "enum": list(WEBSITES)}, "status": {"type": "string", "enum": list(STATUSES)},
    "date_created": {"type": "string"}, "user_id": {"type": ["integer", "null"]},
    "amount_paid": {"type": "integer"}, "note": {"type": "string"}}
OTHER_WEBSITES = (1, 2, 3)  # websites of other organisations: they exist, the sandbox's key may not read them
# RFC 9110: a 401 names the scheme the client should use
CHALLENGE = {"WWW-Authenticate": 'Basic realm="Firespring API", charset="UTF-8"'}


def parse_date(name: str, value: str | None) -> str | None:
    """A ``YYYY-MM-DD`` filter as the UTC instant its day starts, in the index's text form."""
    if value is None or value == "":
        return None
    try:
        if not _DATE.match(value):
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise BadParam(name, f"The {name} parameter must be a date in the YYYY-MM-DD format, got '{value}'.") from None
    return f"{day.isoformat()} 00:00:00"


def parse_includes(value: str | None) -> set[str]:
    wanted = {part.strip() for part in (value or "").split(",") if part.strip()}
    unknown = sorted(wanted - set(INCLUDES))
    if unknown:
        raise BadParam("includes", f"Unknown include(s): {', '.join(unknown)}. Available: {', '.join(INCLUDES)}.")
    for name in list(wanted):
        if "." in name:
            wanted.add(name.split(".", 1)[0])
    return wanted


def parse_limited_keys(value: Any) -> dict[str, set[int]]:
    """``KEY:4+19,KEY2:27`` -> the websites each extra key may read."""
    keys: dict[str, set[int]] = {}
    for item in str(value or "").split(","):
        key, sep, sites = item.strip().partition(":")
        if not item.strip():
            continue
        if not sep or not all(s.isdigit() for s in sites.split("+")):
            raise ValueError(f"limited_keys item {item!r} must look like KEY:4+19")
        keys[key] = {int(s) for s in sites.split("+")}
    return keys


def db_time_of(value: str) -> str:
    return db_time(datetime.fromisoformat(value)) or ""


def _ref(value: Any, included: bool, empty: Any) -> Any:
    """A nested object as the API shows it: the object when included, else its id (``empty`` when absent)."""
    if included:
        return value if isinstance(value, dict) else None
    return value["id"] if isinstance(value, dict) else empty


def render(doc: dict[str, Any], includes: set[str]) -> dict[str, Any]:
    """One stored (fully expanded) order as the API answers it for these ``includes``."""
    out: dict[str, Any] = {"object": doc["object"], "id": doc["id"]}
    for key in sorted(k for k in doc if k not in ("object", "id")):
        value = doc[key]
        if key in LIST_INCLUDES and key not in includes:
            continue
        if key == "message":
            value = _ref(value, "message" in includes, None)
        elif key == "user":
            value = _ref(value, "user" in includes, None)
        elif key == "portal":
            value = _ref(value, "portal" in includes, 0)
        elif key == "promo_code" and value is not None and "promo_code" not in includes:
            inner = value["promo_code"]
            value = {**value, "promo_code": {"object": inner["object"], "id": inner["id"],
                                             "promo_code": inner["promo_code"]}}
        elif key == "items":
            value = [_render_item(item, includes) for item in value]
        elif key == "shipments":
            value = [{k: (_ref(v, f"shipments.{k}" in includes, None) if k.startswith("shipping_") else v)
                      for k, v in shipment.items()} for shipment in value]
        out[key] = value
    return out


def _render_item(item: dict[str, Any], includes: set[str]) -> dict[str, Any]:
    out = {}
    for key, value in item.items():
        if key in ("attributes", "print_ready_files") and f"items.{key}" not in includes:
            continue
        out[key] = _ref(value, "items.portal" in includes, 0) if key == "portal" else value
    return out


class FirespringSandbox(Sandbox):
    name = "firespring"
    title = "Firespring API"
    orders_path = f"/websites/{WEBSITES[0]}/orders"
    error_style = ErrorList()
    invalid_status = 422
    invalid_code = "invalid_parameter"

    # --- data -------------------------------------------------------------------------------------------
    def define(self) -> None:
        unknown = set(self.options.extra) - {"limited_keys"}
        if unknown:
            raise ValueError(f"unknown firespring sandbox option(s) {', '.join(sorted(unknown))}; known: limited_keys")
        self.limited_keys = parse_limited_keys(self.options.extra.get("limited_keys"))
        self.store.define("orders", {"website": "INTEGER", "created": "TEXT", "status": "TEXT", "tracking": "TEXT",
                                     "username": "TEXT"})
        self._faker: FirespringFaker | None = None

    @property
    def faker(self) -> FirespringFaker:
        if self._faker is None:  # data kept in a file from an earlier process: draw fresh ids above it
            self._faker = FirespringFaker(random.Random(self.seed + 1), self.seed,
                                          id_base=1_000_000 + self.store.count("orders") * 20)
        return self._faker

    def generate(self, rng: random.Random, orders: int, anchor: datetime) -> None:
        faker = FirespringFaker(rng, self.seed)
        self._faker = faker
        start, end = anchor - timedelta(days=3 * 365), anchor - timedelta(hours=1)
        moments = sorted(faker.moment(start, end) for _ in range(orders))
        order_id = 300
        items = []
        for created in moments:
            order_id += rng.randint(1, 40)
            website = rng.choices(WEBSITES, (5, 3, 2))[0]
            status = faker.status_for_age((anchor - created).total_seconds() / 86400)
            items.append(self._item(faker.order(order_id, website, created, status, end), website))
            if len(items) >= 5000:
                self.store.put_many("orders", items)
                items = []
        self.store.put_many("orders", items)

    @staticmethod
    def _item(doc: dict[str, Any], website: int) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
        user = doc.get("user") or {}
        columns = {
            "website": website,
            "created": db_time_of(doc["date_created"]),
            "status": doc["status"],
            "tracking": doc["message"]["message_tracking_number"],
            "username": user.get("username") or "",
        }
        return doc["id"], doc, columns, {}

    def _put(self, doc: dict[str, Any], website: int) -> None:
        self.store.put_many("orders", [self._item(doc, website)])

    def website_of(self, doc: dict[str, Any]) -> int:
        return WEBSITES[doc["content_catalog"] - 10119035]

    def create_order(self, data: dict[str, Any]) -> dict[str, Any]:
        check_fields(data, CONTROL)
        website = int(data.get("website_id", WEBSITES[0]))
        if website not in WEBSITES:
            raise ValueError(f"website_id must be one of {', '.join(map(str, WEBSITES))}")
        status = str(data.get("status", "new"))
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        now = self.now()
        created = datetime.fromisoformat(data["date_created"]).astimezone(UTC) if data.get("date_created") else now
        new_id = int(self.store.scalar("SELECT coalesce(max(id), 300) FROM orders")) + self.faker.rng.randint(1, 40)
        user_id: int | None | bool = True
        if "user_id" in data:
            user_id = None if data["user_id"] is None else int(data["user_id"])
        doc = self.faker.order(new_id, website, created, status, max(now, created), user_id)
        if "amount_paid" in data:
            doc["amount_paid"] = int(data["amount_paid"])
        self._put(doc, website)
        return doc

    def update_order(self, order_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Change an order as a website admin would; its ``date_created`` never moves (there is no modified time)."""
        doc = self.store.get("orders", int(order_id)) if str(order_id).isdigit() else None
        if doc is None:
            return None
        check_fields(data, CONTROL)
        status = str(data.get("status") or LIFECYCLE[doc["status"]])
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        doc["status"] = status
        now = self.now()
        if status in ("shipped", "completed") and not doc["shipments"]:
            doc["shipments"].append(self.faker.shipment(now, now, {k: v for k, v in doc["billing_address"].items()
                                                                   if k not in ("object", "id")}))
        if "amount_paid" in data:
            paid = int(data["amount_paid"])
            if paid > doc["amount_paid"]:
                doc["payment_transactions"].append({
                    "object": "payment_transaction", "id": self.faker.ids.next("transaction"),
                    "amount": paid - doc["amount_paid"], "card_type": "visa", "date_created": iso(now),
                    "last_four": "4242", "payment_method": "credit_card", "status": "approved", "type": "charge"})
            doc["amount_paid"] = paid
        if data.get("note"):
            doc["notes"].append({**self.faker.note(now, now), "note": str(data["note"])})
        self._put(doc, self.website_of(doc))
        return doc

    def live_change(self, order_id: str, kind: str, rng: random.Random) -> None:
        """Paid in full, moved along its lifecycle (new, processing, shipped, completed), or canceled."""
        doc = self.store.get("orders", int(order_id))
        if doc is None or doc["status"] in ("canceled", "denied"):
            return
        data: dict[str, Any] = {"pay": {"amount_paid": doc["pricing"]["total"]}, "change": {},
                "cancel": {"status": "canceled"}}[kind]
        self.update_order(order_id, data)

    def demo_settings(self, base_url: str) -> dict[str, Any]:
        return {"type": self.name, "base_url": base_url, "api_key": self.options.api_key, "website_id": WEBSITES[0]}

    # --- HTTP -------------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/websites/{website_id}/orders", self.endpoint(self.list_orders), methods=["GET"]),
            Route("/websites/{website_id}/orders/{id}", self.endpoint(self.get_order), methods=["GET"]),
        ]

    def credential(self, request: Request) -> str | None:
        """The HTTP Basic user name (the API key); the password is ignored."""
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            return base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, ValueError):
            return None

    def authenticate(self, request: Request) -> None:
        """Auth, version and website, in the order the API checks them (401, 422, 404, 403)."""
        header = request.headers.get("authorization", "")
        if not header:
            raise ApiError(401, "An API key is required (HTTP Basic user name).", "unauthorized", "authorization",
                           headers=CHALLENGE)
        key = self.credential(request)
        if key != self.options.api_key and key not in self.limited_keys:
            raise ApiError(401, "The API key is invalid.", "unauthorized", "authorization", headers=CHALLENGE)
        version = request.headers.get("firespring-api-version", "1")
        if version not in VERSIONS:
            raise ApiError(422, f"Unsupported API version '{version}'. Supported versions: {', '.join(VERSIONS)}.",
                           "invalid_header", "Firespring-Api-Version")
        website = self.website(request)
        if website in OTHER_WEBSITES or (key in self.limited_keys and website not in self.limited_keys[key]):
            raise ApiError(403, f"The API key does not have access to website {website}.", "forbidden", "website_id")

    @staticmethod
    def website(request: Request) -> int:
        raw_id = request.path_params["website_id"]
        if not raw_id.isdigit():  # not an integer: an invalid parameter (422), not an unknown website (404)
            raise ApiError(422, f"The website_id parameter must be an integer, got '{raw_id}'.", "invalid_parameter",
                           "website_id")
        if int(raw_id) not in (*WEBSITES, *OTHER_WEBSITES):
            raise ApiError(404, f"Website {raw_id} was not found.", "not_found", "website_id")
        return int(raw_id)

    async def list_orders(self, request: Request) -> Response:
        website = self.website(request)
        q = request.query_params
        count = int_param("count", q.get("count"), MAX_COUNT, 1, MAX_COUNT) or MAX_COUNT
        page = int_param("page", q.get("page"), 1, 1, MAX_PAGE) or 1
        date_start = parse_date("date_start", q.get("date_start"))
        date_end = parse_date("date_end", q.get("date_end"))
        direction = choice_param("direction", q.get("direction"), ("asc", "desc"), "desc")
        sort = choice_param("sort", q.get("sort"), tuple(SORTS), "date_created") or "date_created"
        status = choice_param("status", q.get("status"), STATUSES, None)
        includes = parse_includes(q.get("includes"))
        where: list[str] = ["website = ?"]
        params: list[Any] = [website]
        if date_start:
            where.append("created >= ?")
            params.append(date_start)
        if date_end:
            where.append("created < ?")
            params.append(date_end)
        if status:
            where.append("status = ?")
            params.append(status)
        search = q.get("search")
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("tracking LIKE ? ESCAPE '\\' OR username LIKE ? ESCAPE '\\'")
            params += [pattern, pattern]
        order_by = f"{SORTS[sort]} {direction.upper() if direction else 'DESC'}, id {direction or 'desc'}"
        with self.store.lock:
            total = self.store.count("orders", where, params)
            docs = self.store.find("orders", where, params, order_by, count, (page - 1) * count)
        data = [render(doc, includes) for doc in docs]
        pagination = {"total": total, "count": len(data), "per_page": count, "current_page": page,
                      "total_pages": math.ceil(total / count)}
        return JSON({"object": "list", "data": data, "meta": {"pagination": pagination}})

    async def get_order(self, request: Request) -> Response:
        website = self.website(request)
        includes = parse_includes(request.query_params.get("includes"))
        raw_id = request.path_params["id"]
        if not raw_id.isdigit():
            raise ApiError(422, f"The order_id parameter must be an integer, got '{raw_id}'.", "invalid_parameter",
                           "order_id")
        order_id = int_param("order_id", raw_id, 0)
        doc = self.store.get("orders", order_id) if order_id is not None else None
        if doc is None or self.website_of(doc) != website:
            raise ApiError(404, f"Order {raw_id} was not found on website {website}.", "not_found", "order_id")
        return JSON(render(doc, includes))

    def security_schemes(self, base_url: str) -> dict[str, Any]:
        return {"basic": {"type": "http", "scheme": "basic",
                          "description": "the API key as user name, an empty password"}}

    def openapi_paths(self) -> dict[str, Any]:
        one_include = "|".join(re.escape(name) for name in INCLUDES)
        common = [
            {"name": "website_id", "in": "path", "required": True,
             "schema": {"type": "integer", "enum": list(WEBSITES)}},
            {"name": "Firespring-Api-Version", "in": "header", "required": False,
             "schema": {"type": "string", "enum": list(VERSIONS), "default": "1"}},
            query_param("includes", "string", "Comma separated list of: " + ", ".join(INCLUDES),
                        pattern=f"^({one_include})(,({one_include}))*$"),
        ]
        listing = [
            *common,
            query_param("count", "integer", "Orders per page", default=MAX_COUNT, minimum=1, maximum=MAX_COUNT),
            query_param("page", "integer", "Page number", default=1, minimum=1, maximum=MAX_PAGE),
            query_param("date_start", "string", "Created at or after this day (00:00 UTC), YYYY-MM-DD", format="date"),
            query_param("date_end", "string", "Created before this day (00:00 UTC), YYYY-MM-DD", format="date"),
            query_param("direction", "string", "Sort direction", enum=["asc", "desc"], default="desc"),
            query_param("sort", "string", "Sort field", enum=list(SORTS), default="date_created"),
            query_param("status", "string", "Only this status", enum=list(STATUSES)),
            query_param("search", "string", "Substring of the message tracking number or the user name"),
        ]
        order = order_schema()
        pagination = {"type": "object", "required": ["total", "count", "per_page", "current_page", "total_pages"],
                      "properties": {k: {"type": "integer"} for k in
                                     ("total", "count", "per_page", "current_page", "total_pages")}}
        page = {"type": "object", "required": ["object", "data", "meta"], "properties": {
            "object": {"const": "list"}, "data": {"type": "array", "items": order},
            "meta": {"type": "object", "required": ["pagination"], "properties": {"pagination": pagination}}}}
        errors = error_answers(self.error_style, {
            "401": "no or wrong API key", "403": "the key has no access to this website",
            "404": "unknown website or order", "422": "invalid parameter or header"})
        return {
            "/websites/{website_id}/orders": {"get": {
                "summary": "List orders", "operationId": "listOrders", "parameters": listing,
                "responses": {"200": json_answer("a page of orders", page), **errors}}},
            "/websites/{website_id}/orders/{id}": {"get": {
                "summary": "Get one order", "operationId": "getOrder",
                "responses": {"200": json_answer("the order", order), **errors},
                "parameters": [*common, {"name": "id", "in": "path", "required": True,
                                         "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}}],
            }},
        }


def _thing(kind: str, fields: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    """One of Firespring's objects: ``object`` names its kind, ``id`` is its number."""
    return obj({"object": {"const": kind}, "id": INTEGER, **fields}, optional)


def order_schema() -> Schema:
    """An order as the documentation shows it: nested objects as their ids unless ``includes`` names them (a
    portal's id is 0 when there is none, and an included absent portal is null), list fields only when included."""
    address = {k: STRING for k in ("first_name", "last_name", "company", "address_1", "address_2", "city", "state",
                                   "zip", "country", "email", "phone")}
    portal = _thing("portal", {"name": STRING})
    portal_ref = {"anyOf": [INTEGER, portal, {"type": "null"}]}
    named = {"name": STRING}
    item = _thing("order_item", {
        "attributes": array(_thing("order_item_attribute", {"name": STRING, "value": STRING, "price": INTEGER})),
        "catalog_item": INTEGER, "name": STRING, "portal": portal_ref, "price": INTEGER,
        "print_ready_files": array(_thing("order_item_print_ready_file", {"file_name": STRING})),
        "quantity": INTEGER, "sku": STRING, "total": INTEGER}, optional=("attributes", "print_ready_files"))
    shipment = _thing("order_shipment", {
        "date_shipped": STRING,
        "shipping_address": one_of_id_or(_thing("order_shipping_address", address)),
        "shipping_carrier": one_of_id_or(_thing("shipping_carrier", named)),
        "shipping_method": one_of_id_or(_thing("shipping_method", named)), "tracking_number": STRING})
    promo = _thing("promo_code", {"promo_code": STRING, "description": STRING, "is_active": BOOLEAN},
                   optional=("description", "is_active"))
    money = ("shipping", "shipping_discount", "subtotal", "subtotal_discount", "tax", "total")
    return _thing("order", {
        "additional_information": array(_thing("order_additional_information", {"label": STRING, "value": STRING})),
        "amount_paid": INTEGER, "billing_address": _thing("order_billing_address", address),
        "content_catalog": INTEGER, "currency": STRING, "date_created": STRING, "is_pay_later": BOOLEAN,
        "items": array(item),
        "message": one_of_id_or(_thing("message", {"message_tracking_number": STRING, "subject": STRING,
                                                   "date_created": STRING})),
        "notes": array(_thing("order_note", {"date_created": STRING, "note": STRING})),
        "order_type": STRING,
        "payment_transactions": array(_thing("payment_transaction", {
            "amount": INTEGER, "card_type": STRING, "date_created": STRING, "last_four": STRING,
            "payment_method": STRING, "status": STRING, "type": STRING})),
        "portal": portal_ref, "pricing": obj({"object": {"const": "order_pricing"}, **{k: INTEGER for k in money}}),
        "promo_code": nullable(_thing("order_promo_code", {"promo_code": promo, "shipping_discount": INTEGER,
                                                            "subtotal_discount": INTEGER})),
        "shipments": array(shipment), "shipping_tax_percentage": NUMBER,
        "status": {"type": "string", "enum": list(STATUSES)},
        "user": nullable(one_of_id_or(_thing("website_user", {"third_party_identifier": STRING, "username": STRING}))),
    }, optional=LIST_INCLUDES)
