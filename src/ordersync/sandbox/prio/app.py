"""The Prio Distributor API v3 sandbox: ``POST /oauth2/token`` and ``GET /orders`` as documented.

Served both at the root and under ``/v3.4/distributor`` (the real base path). Semantics, as we read the
vendor's documentation; **assumptions** where it is silent:

* OAuth2 client credentials: the client authenticates with Basic ``client_id:client_secret`` (as documented,
  JSON body) or with the standard RFC 6749 form body (``client_secret_basic`` or ``client_secret_post``);
  tokens live ``token_ttl`` seconds (option, default 3600, real time even when the data clock is pinned);
  401 for a missing, unknown or expired token, 403 for a revoked one (``POST /_sandbox/revoke``;
  ``POST /_sandbox/expire`` expires every token now);
* dates are RFC 3339 with an offset; ``Z`` is refused with 400 ``INVALID_REQUEST`` (as documented);
  ``order_created_from``/``_to`` are inclusive, ``order_modified`` is strictly after (creation counts as a
  modification); without either creation bound only orders created in the last 3 calendar months come back;
* id filters match the order's ``order_*_id``; ``supplier_id``, the booking and product filters match when any
  booking matches (``filter_bookings=true`` then keeps only those bookings); contact filters match any contact;
  ``order_contact_name`` equals (case-insensitively) a contact's first name, last name or "first last";
  ``order_contact_email`` and ``order_created_email`` compare case-insensitively;
* ``cache`` defaults to true (the documentation recommends against disabling it: **assumption**);
  ``order_search_query`` (only with the cache, so 400 with ``cache=false``): every word must occur in the
  order's references, contact names and e-mails, booking references or product titles; ``*`` is a wildcard;
* ``order_sort_by`` ``ORDER_CREATED`` (default) or ``ORDER_MODIFIED``; ties by ``order_reference``;
* errors are ``{error, error_description, errors[]}`` everywhere (faults included);
* ``items_per_page`` default 10, capped at ``max_items_per_page`` (option, default 100); ``start_index`` (1-based)
  wins over ``page``; ``If-Modified-Since`` answers 304 when no matching order was modified after it (a
  malformed one is ignored, RFC 9110);
  ``Last-Modified`` is the latest ``order_modified`` of the matching orders (the clock when none match).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import random
import re
import secrets
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ordersync.sandbox.app import JSON, Sandbox
from ordersync.sandbox.docstore import where_sql
from ordersync.sandbox.errors import ApiError, BadParam, OAuthErrors
from ordersync.sandbox.openapi import error_answers, json_answer, query_param
from ordersync.sandbox.params import (
    CALENDAR_DATE,
    CLOCK_TIME,
    INT64_MAX,
    UTC_OFFSET,
    bool_param,
    datetime_param,
    int_param,
)
from ordersync.sandbox.prio.fake import ORDER_STATUSES, PrioFaker, stamp
from ordersync.sandbox.schema import BOOLEAN, INTEGER, STRING, Schema, array, check_fields, nullable, obj

PREFIXES = ("", "/v3.4/distributor")
DEFAULT_ITEMS_PER_PAGE = 10
SORTS = {"ORDER_CREATED": "created", "ORDER_MODIFIED": "modified"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}:\d{2}|[Zz])$")
INT_FILTERS = {"reseller_id": "reseller", "distributor_id": "distributor", "market_admin_id": "market_admin"}
TAG_FILTERS = {  # query parameter -> (tag, is a number, compare case-insensitively)
    "supplier_id": ("supplier", True, False),
    "order_contact_uid": ("contact_uid", False, False),
    "order_contact_email": ("contact_email", False, True),
    "order_contact_name": ("contact_name", False, True),
    "booking_reference": ("booking_ref", False, False),
    "booking_external_reference": ("booking_ext_ref", False, False),
    "product_id": ("product_id", False, False),
    "product_type_code": ("type_code", True, False),
    "product_availability_id": ("availability", True, False),
    "product_availability_capacity_id": ("capacity", True, False),
}
BOOKING_FILTERS = ("supplier_id", "booking_reference", "booking_external_reference", "product_id",
                   "product_type_code", "product_availability_id", "product_availability_capacity_id")


NESTED = ("order_bookings", "order_channel", "order_pricing", "order_settlement_type", "order_contacts",
          "order_promocodes", "order_payments", "order_invoices", "order_options", "order_flags",
          "order_custom_fields", "order_notes")
PLACEHOLDER_VALUE = {"value": "<Error: Too many levels of nesting to fake this schema>"}
NOTE_TEXTS = ("Customer asked for a receipt", "Group arrives late", "Wheelchair access requested",
              "Tickets resent by e-mail")
# RFC 6750 3: a 401 of a protected resource says Bearer; with a token, why it was refused
BEARER = 'Bearer realm="Prio Distributor API", error="invalid_token", error_description="The access token is invalid"'
DATE_HINT = "an RFC 3339 date-time with an offset, e.g. 2024-01-31T00:00:00+00:00"
SCOPE = "https://www.prioticket.com/auth/distributor.orders"


def db_time(moment: datetime) -> str:
    """Index form of an instant: UTC, milliseconds, sortable text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]


def parse_date(name: str, value: str) -> datetime:
    if not _DATE.match(value):
        raise BadParam(name, f"{name} '{value}' is not {DATE_HINT}")
    if value[-1] in "Zz":
        raise BadParam(name, f"{name} '{value}' uses the 'Z' suffix, which is not supported; send the offset "
                             f"instead: {value[:-1]}+00:00")
    moment = datetime_param(name, value, DATE_HINT)
    try:
        db_time(moment)
    except (ValueError, OverflowError):
        raise BadParam(name, f"{name} '{value}' is out of range") from None
    return moment.astimezone(UTC)


def months_before(moment: datetime, months: int) -> datetime:
    month = moment.month - months
    year = moment.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    for day in (moment.day, 30, 29, 28):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def booking_matches(booking: dict[str, Any], filters: dict[str, str]) -> bool:
    """Whether one booking satisfies every booking-level filter (values already validated)."""
    types = _dicts(booking.get("product_type_details"))
    checks = {
        "supplier_id": str(booking.get("product_supplier_id")),
        "booking_reference": booking.get("booking_reference"),
        "booking_external_reference": booking.get("booking_external_reference"),
        "product_id": booking.get("product_id"),
        "product_availability_id": str(booking.get("product_availability_id")),
        "product_availability_capacity_id": str(booking.get("product_availability_capacity_id")),
    }
    for name, wanted in filters.items():
        if name == "product_type_code":
            if not any(str(t.get("product_type_code")) == wanted for t in types):
                return False
        elif checks.get(name) != wanted:
            return False
    return True


class PrioSandbox(Sandbox):
    name = "prio"
    title = "Prio Distributor API v3"
    orders_path = "/v3.4/distributor/orders"
    error_style = OAuthErrors()
    invalid_code = "INVALID_REQUEST"

    # --- data -------------------------------------------------------------------------------------------
    def define(self) -> None:
        extra = self.options.extra
        try:
            self.token_ttl = float(extra.get("token_ttl", 3600))
            self.max_items_per_page = int(extra.get("max_items_per_page", 100))
            self.placeholders = float(extra.get("placeholders", 0))
        except ValueError:
            raise ValueError("prio sandbox options token_ttl (seconds) and max_items_per_page must be numbers, "
                             "e.g. -o token_ttl=5 -o max_items_per_page=100") from None
        if not 0 <= self.placeholders <= 1:
            raise ValueError("prio sandbox option placeholders is a probability between 0 and 1")
        if self.max_items_per_page < 1:
            raise ValueError("prio sandbox option max_items_per_page must be at least 1")
        self.client_id = str(extra.get("client_id", "sandbox-client"))
        self.client_secret = str(extra.get("client_secret", self.options.api_key))
        self.tokens: dict[str, dict[str, Any]] = {}
        self.clock: Callable[[], float] = time.monotonic  # tokens' lifetimes (a test may move its own)
        self.stats = {"tokens_issued": 0, "orders_requests": 0, "not_modified": 0}
        self.requests_log: deque[dict[str, Any]] = deque(maxlen=1000)  # what the tests inspect
        columns = {"created": "TEXT", "modified": "TEXT", "status": "TEXT", "ext_ref": "TEXT", "reseller": "TEXT",
                   "distributor": "TEXT", "market_admin": "TEXT", "created_email": "TEXT", "search": "TEXT"}
        self.store.define("orders", columns, tags=tuple(tag for tag, _, _ in TAG_FILTERS.values()))
        self.store.define("revisions", {"reference": "TEXT", "version": "INTEGER"})
        self._faker: PrioFaker | None = None

    @property
    def faker(self) -> PrioFaker:
        if self._faker is None:
            self._faker = PrioFaker(random.Random(self.seed + 1), self.seed)
            self._faker.next_booking = 100000 + self.store.count("orders") * 5
        return self._faker

    def generate(self, rng: random.Random, orders: int, anchor: datetime) -> None:
        faker = PrioFaker(rng, self.seed)
        self._faker = faker
        start, end = faker.history(anchor)
        moments = sorted(faker.moment(start, end) for _ in range(orders))
        items = []
        for n, created in enumerate(moments):
            created = created + timedelta(milliseconds=rng.randint(0, 999))
            doc = faker.order(str(170000100000 + n * 3 + rng.randint(0, 2)), created)
            latest = created
            for _ in range(rng.choice((0, 0, 0, 1, 2))):
                # a revision is never stamped before the one it follows (the moments are drawn unsorted)
                latest = max(latest, faker.moment(created, end) + timedelta(milliseconds=rng.randint(0, 999)))
                doc["order_version"] += 1
                doc["order_modified"] = stamp(latest)
                if rng.random() < 0.2 and doc["order_status"] == "ORDER_CONFIRMED":
                    self._cancel(doc, latest)
            self.decorate(doc, created)
            items.append(self._order_item(doc))
            if len(items) >= 5000:
                self.store.put_many("orders", items)
                items = []
        self.store.put_many("orders", items)

    def decorate(self, doc: dict[str, Any], created: datetime) -> None:
        """What the main generator never made: notes on some orders and, with ``-o placeholders=P``, the
        documentation's ``{"value": "<Error: ...>"}`` placeholders in place of nested values (a client must
        survive them). Drawn from a generator of the seed and the reference, so the rest of the data is unchanged."""
        rng = random.Random(f"{self.seed}:{doc['order_reference']}")
        if rng.random() < 0.1:
            doc["order_notes"] = [{"note_text": rng.choice(NOTE_TEXTS), "note_created": stamp(created)}]
        if rng.random() < self.placeholders:
            for key in rng.sample(NESTED, rng.randint(1, 3)):
                value = doc.get(key)
                if isinstance(value, list):
                    doc[key] = [*value, PLACEHOLDER_VALUE] if not value else [PLACEHOLDER_VALUE, *value[1:]]
                else:
                    doc[key] = PLACEHOLDER_VALUE

    @staticmethod
    def _cancel(doc: dict[str, Any], when: datetime) -> None:
        doc["order_status"] = "ORDER_CANCELLED"
        doc["order_cancellation_date_time"] = stamp(when)
        for booking in _dicts(doc.get("order_bookings")):
            booking["booking_status"] = "BOOKING_CANCELLED"

    def _order_item(self, doc: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
        bookings = _dicts(doc.get("order_bookings"))
        contacts = _dicts(doc.get("order_contacts"))
        types = [t for b in bookings for t in _dicts(b.get("product_type_details"))]

        def values(items: list[dict[str, Any]], key: str, lower: bool = False) -> list[str]:
            found = {str(i[key]).lower() if lower else str(i[key]) for i in items if i.get(key) is not None}
            return sorted(found)

        names: set[str] = set()
        for c in contacts:
            first, last = str(c.get("contact_name_first") or ""), str(c.get("contact_name_last") or "")
            names.update(n.lower() for n in (first, last, f"{first} {last}".strip()) if n)
        words = [doc.get("order_reference"), doc.get("order_external_reference"), doc.get("order_created_email"),
                 *(c.get(k) for c in contacts for k in ("contact_name_first", "contact_name_last", "contact_email")),
                 *(b.get(k) for b in bookings for k in ("booking_reference", "booking_external_reference",
                                                         "product_title"))]
        columns = {
            "created": db_time(datetime.fromisoformat(doc["order_created"].replace("Z", "+00:00"))),
            "modified": db_time(datetime.fromisoformat(doc["order_modified"].replace("Z", "+00:00"))),
            "status": doc.get("order_status"),
            "ext_ref": doc.get("order_external_reference"),
            "reseller": str(doc.get("order_reseller_id")),
            "distributor": str(doc.get("order_distributor_id")),
            "market_admin": str(doc.get("order_market_admin_id")),
            "created_email": str(doc.get("order_created_email") or "").lower(),
            "search": " ".join(str(w).lower() for w in words if w),
        }
        tags = {
            "supplier": values(bookings, "product_supplier_id"),
            "contact_uid": values(contacts, "contact_uid"),
            "contact_email": values(contacts, "contact_email", lower=True),
            "contact_name": sorted(names),
            "booking_ref": values(bookings, "booking_reference"),
            "booking_ext_ref": values(bookings, "booking_external_reference"),
            "product_id": values(bookings, "product_id"),
            "type_code": values(types, "product_type_code"),
            "availability": values(bookings, "product_availability_id"),
            "capacity": values(bookings, "product_availability_capacity_id"),
        }
        return doc["order_reference"], doc, columns, tags

    def _apply(self, doc: dict[str, Any], data: dict[str, Any]) -> None:
        """Control-endpoint changes: any documented top-level field except the identity and the clock fields."""
        fixed = {"order_reference", "order_created", "order_modified", "order_version"}
        for key, value in data.items():
            if key in doc and key not in fixed:
                doc[key] = value
        if {"order_bookings", "order_promocodes"} & set(data):
            self.faker.price(doc)

    def create_order(self, data: dict[str, Any]) -> dict[str, Any]:
        check_fields(data, CONTROL)
        top = self.store.scalar("SELECT max(CAST(id AS INTEGER)) FROM orders")
        reference = str(int(top or 170000100000) + 3)
        doc = self.faker.order(reference, self.now(), data.get("order_status"))
        self._apply(doc, data)
        self.store.put_many("orders", [self._order_item(doc)])
        return doc

    def update_order(self, order_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        doc = self.store.get("orders", order_id)
        if doc is None:
            return None
        self.store.put("revisions", f"{order_id}#{doc['order_version']}", doc,
                       {"reference": order_id, "version": doc["order_version"]})
        now = self.now()
        check_fields(data, CONTROL)
        if data.get("cancel"):
            self._cancel(doc, now)
        self._apply(doc, {k: v for k, v in data.items() if k != "cancel"})
        if not data:
            doc["order_notes"] = [*_dicts(doc.get("order_notes")), {"note_text": "Updated", "note_created": stamp(now)}]
        doc["order_version"] = int(doc.get("order_version") or 1) + 1
        doc["order_modified"] = stamp(now)
        self.store.put_many("orders", [self._order_item(doc)])
        return doc

    def order_id_of(self, doc: dict[str, Any]) -> Any:
        return doc["order_reference"]

    def live_change(self, order_id: str, kind: str, rng: random.Random) -> None:
        """Each change is a new revision (``order_version`` + 1, ``order_modified`` now): a pending or blocked
        order confirmed and paid, a note added (also what paying an order that needs no confirmation does), or
        the order cancelled."""
        doc = self.store.get("orders", order_id)
        if doc is None or doc.get("order_status") == "ORDER_CANCELLED":
            return
        if kind == "pay" and doc.get("order_status") in ("ORDER_PENDING", "ORDER_BLOCKED"):
            self.update_order(order_id, self.confirmation(doc))
        else:
            self.update_order(order_id, {"cancel": True} if kind == "cancel" else {})

    def confirmation(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The fields that confirm an order now: its status, its confirmation time and a payment of its total
        captured (an invoice too, on most orders), as a generated confirmed order has them."""
        now = self.now()
        return {"order_status": "ORDER_CONFIRMED", "order_confirmed": stamp(now),
                "order_payments": self.faker.payments(doc, now), "order_invoices": self.faker.invoices(doc, now)}

    def expire_tokens(self) -> int:
        for info in self.tokens.values():
            info["expires"] = 0.0
        return len(self.tokens)

    def demo_settings(self, base_url: str) -> dict[str, Any]:
        return {"type": self.name, "base_url": f"{base_url}/v3.4/distributor", "client_id": self.client_id,
                "client_secret": self.client_secret}

    # --- HTTP -------------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for prefix in PREFIXES:
            routes.append(Route(f"{prefix}/oauth2/token", self.endpoint(self.issue_token, auth=False),
                                methods=["POST"]))
            routes.append(Route(f"{prefix}/orders", self.endpoint(self.list_orders), methods=["GET"]))
        routes.append(Route("/_sandbox/revoke", self.revoke, methods=["POST"]))
        routes.append(Route("/_sandbox/expire", self.expire, methods=["POST"]))
        routes.append(Route("/_sandbox/tokens", self.token_stats, methods=["GET"]))
        return routes

    def credential(self, request: Request) -> str | None:
        """The client: its id in the Basic header of a token request, or the client a Bearer token was issued to."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            info = self.tokens.get(value.strip())
            return str(info["client"]) if info else None
        if scheme.lower() == "basic":
            return _basic(value)[0]
        return None

    async def issue_token(self, request: Request) -> Response:
        """OAuth2 client credentials: Basic + JSON as documented, or RFC 6749 form (secret in Basic or the body)."""
        raw = await request.body()
        form = request.headers.get("content-type", "").split(";")[0].strip() == "application/x-www-form-urlencoded"
        body: Any
        if form:
            body = dict(urllib.parse.parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
        else:
            try:
                body = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError:
                raise ApiError(400, "The request body must be JSON or form-encoded", "invalid_request") from None
            if not isinstance(body, dict):
                raise ApiError(400, "The request body must be a JSON object", "invalid_request")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            client_id, client_secret = _basic(encoded)
        else:
            client_id, client_secret = str(body.get("client_id") or ""), str(body.get("client_secret") or "")
        if client_id != self.client_id or client_secret != self.client_secret:
            raise ApiError(401, "Client authentication failed: unknown client_id or wrong secret", "invalid_client",
                           headers={"WWW-Authenticate": 'Basic realm="Prio Distributor API"'})  # RFC 6749 5.2
        if body.get("grant_type") != "client_credentials":
            raise ApiError(400, "grant_type must be client_credentials", "unsupported_grant_type")
        token = secrets.token_urlsafe(32)
        scope = body.get("scope") or SCOPE
        self.tokens[token] = {"expires": self.clock() + self.token_ttl, "revoked": False, "client": client_id}
        self.stats["tokens_issued"] += 1
        return JSON({"access_token": token, "token_type": "Bearer", "expires_in": int(self.token_ttl),
                     "scope": str(scope)}, headers={"Cache-Control": "no-store"})

    def authenticate(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        info = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if info is None:
            challenge = BEARER if scheme.lower() == "bearer" and token else 'Bearer realm="Prio Distributor API"'
            raise ApiError(401, "The access token is missing or invalid", "invalid_token",
                           headers={"WWW-Authenticate": challenge})
        if info["revoked"]:
            raise ApiError(403, "The access token has been revoked", "access_denied")
        if self.clock() >= info["expires"]:
            raise ApiError(401, "The access token has expired", "invalid_token",
                           headers={"WWW-Authenticate": BEARER.replace("is invalid", "has expired")})

    async def revoke(self, request: Request) -> Response:
        for info in self.tokens.values():
            info["revoked"] = True
        return JSON({"revoked": len(self.tokens)})

    async def expire(self, request: Request) -> Response:
        for info in self.tokens.values():
            info["expires"] = 0.0
        return JSON({"expired": len(self.tokens)})

    async def token_stats(self, request: Request) -> Response:
        return JSON({**self.stats, "active": sum(1 for i in self.tokens.values()
                                                 if not i["revoked"] and i["expires"] > self.clock())})

    async def list_orders(self, request: Request) -> Response:
        self.stats["orders_requests"] += 1
        q = request.query_params
        self.requests_log.append({"params": dict(q), "if_modified_since": request.headers.get("if-modified-since")})
        where, params, booking_filters = self.filters(request)
        sort_by = q.get("order_sort_by") or "ORDER_CREATED"
        if sort_by not in SORTS:
            raise BadParam("order_sort_by", f"order_sort_by '{sort_by}' is not supported; use ORDER_CREATED or "
                                            "ORDER_MODIFIED")
        direction = (q.get("order_sort_order") or "DESC").upper()
        if direction not in ("ASC", "DESC"):
            raise BadParam("order_sort_order", f"order_sort_order '{q.get('order_sort_order')}' is invalid; "
                                               "use ASC or DESC")
        asked = int_param("items_per_page", q.get("items_per_page"), None, 1)
        per_page = min(asked or DEFAULT_ITEMS_PER_PAGE, self.max_items_per_page)
        page = int_param("page", q.get("page"), 1, 1, INT64_MAX // self.max_items_per_page) or 1
        start = int_param("start_index", q.get("start_index"), None, 1)
        filter_bookings = bool_param("filter_bookings", q.get("filter_bookings"))
        since = self.if_modified_since(request)
        with self.store.lock:
            latest = self.store.scalar(f"SELECT max(modified) FROM orders{where_sql(where)}", params)
            last_modified = datetime.fromisoformat(latest).replace(tzinfo=UTC) if latest else self.now()
            headers = {"Last-Modified": email.utils.format_datetime(last_modified.replace(microsecond=0), usegmt=True)}
            if since is not None and (latest is None or latest[:19] <= since.strftime("%Y-%m-%dT%H:%M:%S")):
                self.stats["not_modified"] += 1
                return Response(status_code=304, headers=headers)
            total = self.store.count("orders", where, params)
            offset = start - 1 if start is not None else (page - 1) * per_page
            column = SORTS[sort_by]
            docs = self.store.find("orders", where, params, f"{column} {direction}, id {direction}", per_page, offset)
        if filter_bookings and booking_filters:
            for doc in docs:
                doc["order_bookings"] = [b for b in doc.get("order_bookings") or []
                                         if isinstance(b, dict) and booking_matches(b, booking_filters)]
        body = {"api_version": "3.4.0", "data": {
            "current_item_count": len(docs), "items": docs, "items_per_page": per_page, "kind": "order",
            "page_index": offset // per_page + 1, "start_index": offset + 1, "total_items": total,
            "total_pages": -(-total // per_page)}}
        return JSON(body, headers=headers)

    @staticmethod
    def if_modified_since(request: Request) -> datetime | None:
        """The header's instant; a malformed one is ignored (RFC 9110 section 13.1.3)."""
        value = request.headers.get("if-modified-since")
        if not value:
            return None
        try:
            return email.utils.parsedate_to_datetime(value).astimezone(UTC)
        except (TypeError, ValueError, OverflowError, IndexError):
            return None

    def filters(self, request: Request) -> tuple[list[str], list[Any], dict[str, str]]:
        """WHERE clauses for every documented filter, and the booking-level filters for ``filter_bookings``."""
        q = request.query_params
        where: list[str] = []
        params: list[Any] = []
        booking_filters: dict[str, str] = {}
        for name, column in INT_FILTERS.items():
            if q.get(name):
                where.append(f"{column} = ?")
                params.append(str(int_param(name, q[name])))
        for name, column in (("order_reference", "id"), ("order_external_reference", "ext_ref")):
            if q.get(name):
                where.append(f"{column} = ?")
                params.append(q[name])
        if q.get("order_status"):
            if q["order_status"] not in ORDER_STATUSES:
                allowed = ", ".join(ORDER_STATUSES)
                raise BadParam("order_status", f"order_status '{q['order_status']}' is invalid; use one of {allowed}")
            where.append("status = ?")
            params.append(q["order_status"])
        if q.get("order_created_email"):
            where.append("created_email = ?")
            params.append(q["order_created_email"].lower())
        for name, (tag, number, lower) in TAG_FILTERS.items():
            value = q.get(name)
            if not value:
                continue
            value = str(int_param(name, value)) if number else (value.lower() if lower else value)
            where.append(self.store.tag_filter("orders", tag))
            params.append(value)
            if name in BOOKING_FILTERS:
                booking_filters[name] = value
        created_from, created_to = q.get("order_created_from"), q.get("order_created_to")
        if created_from:
            where.append("created >= ?")
            params.append(db_time(parse_date("order_created_from", created_from)))
        if created_to:
            where.append("created <= ?")
            params.append(db_time(parse_date("order_created_to", created_to)))
        if not created_from and not created_to:
            where.append("created >= ?")
            params.append(db_time(months_before(self.now(), 3)))
        if q.get("order_modified"):
            where.append("modified > ?")
            params.append(db_time(parse_date("order_modified", q["order_modified"])))
        view = q.get("order_view_type")
        if view and view != "DISTRIBUTOR":
            raise BadParam("order_view_type", f"order_view_type '{view}' is outside the scope of these credentials "
                                              "(DISTRIBUTOR)")
        cache = bool_param("cache", q.get("cache"), default=True)  # "disabling ... is not recommended"
        if q.get("order_search_query"):
            if not cache:
                raise BadParam("order_search_query",
                               "order_search_query is only available when cache is enabled (cache=true)")
            for word in q["order_search_query"].lower().split():
                where.append("search LIKE ? ESCAPE '\\'")
                escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
                params.append(f"%{escaped}%")
        return where, params, booking_filters

    def openapi_paths(self) -> dict[str, Any]:
        filters = [
            *(query_param(n, "integer", f"[FILTER] on {n}", minimum=0, maximum=INT64_MAX)
              for n in (*INT_FILTERS, "supplier_id")),
            *(query_param(n, "string", f"[FILTER] on {n}") for n in (
                "order_reference", "order_external_reference", "order_contact_uid", "order_contact_name",
                "order_contact_email", "booking_reference", "booking_external_reference", "product_id",
                "order_created_email")),
            query_param("order_status", "string", "[FILTER] on order_status", enum=list(ORDER_STATUSES)),
            *(query_param(n, "integer", f"[FILTER] on {n}", minimum=0, maximum=INT64_MAX) for n in (
                "product_type_code", "product_availability_id", "product_availability_capacity_id")),
            *(query_param(n, "string", f"[FILTER] RFC 3339 with an offset ('Z' is refused): {d}",
                          pattern=f"^{CALENDAR_DATE}T{CLOCK_TIME}(\\.\\d{{1,6}})?{UTC_OFFSET}$")
              for n, d in (("order_created_from", "created at or after"), ("order_created_to", "created at or before"),
                           ("order_modified", "modified (or created) after"))),
            query_param("order_search_query", "string", "[SEARCH] words, * wildcard; needs cache=true"),
            query_param("filter_bookings", "boolean", "[CONFIG] only the bookings matching the filters"),
            query_param("order_view_type", "string", "[CONFIG] account view type", enum=["DISTRIBUTOR"]),
            query_param("order_sort_by", "string", "[SORT]", enum=list(SORTS), default="ORDER_CREATED"),
            query_param("order_sort_order", "string", "[SORT]", enum=["ASC", "DESC"], default="DESC"),
            query_param("items_per_page", "integer", f"[PAGING] at most {self.max_items_per_page} are served",
                        default=DEFAULT_ITEMS_PER_PAGE, minimum=1, maximum=INT64_MAX),
            query_param("start_index", "integer", "[PAGING] 1-based index of the first item", minimum=1,
                        maximum=INT64_MAX),
            query_param("page", "integer", "[PAGING] 1-based page", minimum=1, default=1,
                        maximum=INT64_MAX // self.max_items_per_page),
            query_param("cache", "boolean", "[CACHE] load from the caching server (default true: the documentation "
                        "recommends against disabling it)", default=True),
            {"name": "If-Modified-Since", "in": "header", "required": False, "schema": {"type": "string"}},
        ]
        errors = error_answers(self.error_style, {"400": "INVALID_REQUEST", "401": "invalid or expired token",
                                                  "403": "revoked token"})
        order = order_schema()
        paged = {"type": "object", "required": ["api_version", "data"], "properties": {
            "api_version": {"type": "string"},
            "data": {"type": "object", "required": [
                "current_item_count", "items", "items_per_page", "kind", "page_index", "start_index", "total_items",
                "total_pages"], "properties": {
                "current_item_count": {"type": "integer"}, "items": {"type": "array", "items": order},
                "items_per_page": {"type": "integer"}, "kind": {"type": "string"}, "page_index": {"type": "integer"},
                "start_index": {"type": "integer"}, "total_items": {"type": "integer"},
                "total_pages": {"type": "integer"}}}}}
        last_modified = {"Last-Modified": {"description": "latest order_modified of the matching orders",
                                           "schema": {"type": "string"}}}
        token_fields = {"grant_type": {"type": "string", "enum": ["client_credentials"]}, "scope": {"type": "string"},
                        "client_id": {"type": "string"}, "client_secret": {"type": "string"}}
        token_body = {"type": "object", "required": ["grant_type"], "properties": token_fields}
        token = {"type": "object", "required": ["access_token", "token_type", "expires_in", "scope"], "properties": {
            "access_token": {"type": "string"}, "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"}, "scope": {"type": "string"}}}
        prefix = PREFIXES[-1]
        return {
            f"{prefix}/oauth2/token": {"post": {
                "summary": "OAuth2 client credentials (client_secret_basic, or client_secret_post in a form body)",
                "operationId": "issueToken", "security": [{"basic": []}, {}],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": token_body},
                    "application/x-www-form-urlencoded": {"schema": token_body}}},
                "responses": {"200": json_answer("a Bearer token", token),
                              **error_answers(self.error_style, {
                                  "400": "invalid_request or unsupported_grant_type",
                                  "401": "invalid_client"})}}},
            f"{prefix}/orders": {"get": {
                "summary": "List Orders (latest revision; last 3 months without a creation range)",
                "operationId": "listOrders", "parameters": filters,
                "responses": {"200": json_answer("a page of orders", paged, last_modified),
                              "304": {"description": "not modified since If-Modified-Since", "headers": last_modified},
                              **errors}}},
        }

    def security_schemes(self, base_url: str) -> dict[str, Any]:
        return {
            "oauth2": {"type": "oauth2", "flows": {"clientCredentials": {
                "tokenUrl": f"{base_url}{PREFIXES[-1]}/oauth2/token",
                "scopes": {SCOPE: "read the distributor's orders"}}}},
            "basic": {"type": "http", "scheme": "basic", "description": "client_id:client_secret (token request)"},
        }


def _basic(encoded: str) -> tuple[str, str]:
    """``(client_id, client_secret)`` of a Basic credential (RFC 6749: each form-urlencoded); blanks if malformed."""
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)


PLACEHOLDER: Schema = obj({"value": STRING})  # the documentation's sample: {"value": "<Error: Too many levels ...>"}


def _nested(fields: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    """A nested object, or the placeholder the documentation's sample shows in its place (a client must survive
    both). Its keys beyond the known ones are open: the documentation describes none of them."""
    return {"anyOf": [{**obj(fields, optional), "additionalProperties": True}, PLACEHOLDER]}


def order_schema() -> Schema:
    """An order: the top-level fields of the documentation's sample, typed as it shows them (ids as strings,
    amounts as decimal strings, times RFC 3339); nested objects as the fields the vendor's material names, or
    placeholders."""
    n_str = nullable(STRING)
    booking = _nested({"booking_reference": STRING, "booking_external_reference": n_str,
                       "booking_travel_date": n_str, "product_id": STRING,
                       "product_type_details": array({"type": "object"})})
    contact = _nested({"contact_uid": STRING, "contact_email": n_str, "contact_name_first": n_str,
                       "contact_name_last": n_str})
    texts = ("order_created_email", "order_created_name", "order_distributor_id", "order_distributor_name",
             "order_language", "order_market_admin_id", "order_market_admin_name", "order_platform_id",
             "order_platform_name", "order_reseller_id", "order_reseller_name", "order_view_type",
             "order_activity_url", "order_customer_url")
    nullable_texts = ("order_external_reference", "order_partner_id", "order_partner_name", "order_confirmed",
                      "order_cancellation_date_time")
    lists = ("order_promocodes", "order_payments", "order_invoices", "order_flags", "order_custom_fields",
             "order_notes")
    return obj({
        "order_reference": STRING, "order_created": STRING, "order_modified": STRING, "order_version": INTEGER,
        "order_status": {"type": "string", "enum": list(ORDER_STATUSES)},
        **{k: STRING for k in texts}, **{k: n_str for k in nullable_texts},
        "order_bookings": array(booking), "order_contacts": array(contact),
        **{k: array(_nested({})) for k in lists},
        **{k: _nested({}) for k in ("order_channel", "order_pricing", "order_settlement_type", "order_options")},
    }, optional=(*texts, *nullable_texts, *lists, "order_channel", "order_pricing", "order_settlement_type",
                 "order_options", "order_contacts"))


# What the control endpoints may set: the documented top-level fields, typed as served, and ``cancel``.
CONTROL: dict[str, Schema] = {**order_schema()["properties"], "cancel": BOOLEAN}
