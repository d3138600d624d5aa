"""What the benchmark and chaos harnesses know about each API, written once: how to list every order (the floor,
the rendering of the fast server's records, the chaos truth), how to configure ordersync and dlt's ``rest_api``
for it, and which fields of an order a comparison checks.

Every function takes the server's root URL (``http://127.0.0.1:PORT``), so the same code drives the sandbox and
the pre-rendered fast server. Credentials are the sandbox defaults for one shared key.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from ordersync import apis

KEY = "bench-key"
PRIO_CLIENT = "sandbox-client"  # the Prio sandbox's default client id; its secret defaults to the api key
APIS = tuple(apis.registry())
"""Every API in the registry: a new API's folder is benchmarked by ``make bench`` with no list to edit (and
:func:`missing_parts` stops the run, naming what this file still needs for it)."""
FIRESPRING_WEBSITE = 4
FIRESPRING_INCLUDES = "billing_address,items,message,payment_transactions,user"
FIRESPRING_PAGE = 100
FIRESPRING_QUERY: dict[str, Any] = {"count": FIRESPRING_PAGE, "includes": FIRESPRING_INCLUDES, "sort": "date_created",
                                    "direction": "asc"}
"""Firespring's orders, oldest first, 100 a page: what every contender asks (plus ``page``)."""
PRIO_PREFIX = "/v3.4/distributor"
EGUMA_START = datetime(2015, 1, 1)  # ordersync's default start_date
# Answers a client must wait for one after the other before it holds any order (the latency scenario's bound):
# a first page everywhere; Prio's OAuth2 token before it.
WAITS_BEFORE_DATA = {"frontcore": 1, "eguma": 1, "firespring": 1, "prio": 2}
EGUMA_WINDOW = timedelta(days=30)
FAR_PAST, FAR_FUTURE = "2000-01-01T00:00:00+00:00", "2100-01-01T00:00:00+00:00"

Record = dict[str, Any]


def get(client: httpx.Client, path: str, **kwargs: Any) -> httpx.Response:
    """GET that waits out a rate limit (429 + Retry-After), for listings that must be complete."""
    while True:
        response = client.get(path, **kwargs)
        if response.status_code != 429:
            response.raise_for_status()
            return response
        time.sleep(float(response.headers.get("retry-after") or 1))


# --- listings (sequential, nothing stored): the floor, the records of the fast server, the chaos truth ------------
def list_frontcore(root: str) -> Iterator[list[Record]]:
    with httpx.Client(base_url=f"{root}/v2", headers={"X-API-Key": KEY}, timeout=120) as client:
        page = 1
        while True:
            batch = orjson.loads(get(client, "/orders", params={"limit": 250, "page": page, "exported": "true",
                                                                 "user_data": "true"}).content)
            yield batch
            if len(batch) < 250:
                return
            page += 1


def eguma_windows(until: datetime) -> Iterator[tuple[str, str]]:
    lo = EGUMA_START
    while lo < until:
        hi = lo + EGUMA_WINDOW
        yield lo.strftime("%Y-%m-%dT%H:%M:%S"), hi.strftime("%Y-%m-%dT%H:%M:%S")
        lo = hi


def list_eguma(root: str) -> Iterator[list[Record]]:
    until = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=2)  # local (Zurich) now is within two days
    with httpx.Client(base_url=f"{root}/v1", timeout=120) as client:
        for after, before in eguma_windows(until):
            yield orjson.loads(get(client, "/vouchers/orders.json", params={
                "apikey": KEY, "updated_at_after": after, "updated_at_before": before}).content)


def list_firespring(root: str) -> Iterator[list[Record]]:
    with httpx.Client(base_url=root, auth=(KEY, ""), headers={"Firespring-Api-Version": "1"}, timeout=120) as client:
        page = 1
        while True:
            body = orjson.loads(get(client, f"/websites/{FIRESPRING_WEBSITE}/orders",
                                    params={**FIRESPRING_QUERY, "page": page}).content)
            yield body["data"]
            if page >= body["meta"]["pagination"]["total_pages"] or not body["data"]:
                return
            page += 1


def list_prio(root: str) -> Iterator[list[Record]]:
    basic = base64.b64encode(f"{PRIO_CLIENT}:{KEY}".encode()).decode()
    with httpx.Client(base_url=f"{root}{PRIO_PREFIX}", timeout=120) as client:
        token = client.post("/oauth2/token", json={"grant_type": "client_credentials"},
                            headers={"Authorization": f"Basic {basic}"}).json()["access_token"]
        page = 1
        while True:
            body = orjson.loads(get(client, "/orders", headers={"Authorization": f"Bearer {token}"}, params={
                "order_created_from": FAR_PAST, "order_created_to": FAR_FUTURE, "order_sort_by": "ORDER_CREATED",
                "order_sort_order": "ASC", "items_per_page": 100, "page": page}).content)
            data = body["data"]
            yield data["items"]
            if page >= data["total_pages"] or not data["items"]:
                return
            page += 1


# --- ordersync and dlt configured for the API -----------------------------------------------------------------
def ordersync_source(api: str, root: str) -> dict[str, Any]:
    """The ``[sources.bench]`` section a user would write for this API (secrets from the environment)."""
    key = "${ORDERSYNC_BENCH_KEY}"
    if api == "frontcore":
        return {"type": "frontcore", "api_key": key, "base_url": f"{root}/v2", "streams": ["orders"]}
    if api == "eguma":
        return {"type": "eguma", "api_key": key, "base_url": f"{root}/v1"}
    if api == "firespring":
        return {"type": "firespring", "api_key": key, "base_url": root, "website_id": FIRESPRING_WEBSITE}
    if api != "prio":
        raise KeyError(f"benchmarks/targets.py: no ordersync source for the API '{api}'")
    return {"type": "prio", "client_id": PRIO_CLIENT, "client_secret": key, "base_url": f"{root}{PRIO_PREFIX}"}


def dlt_resource(api: str, root: str) -> dict[str, Any]:
    """dlt ``rest_api`` configuration written from the vendor's documentation (/work/shared/api-docs)."""
    if api == "frontcore":  # page numbers, no total: stop on the first empty page
        return {"client": {"base_url": f"{root}/v2/", "headers": {"X-API-Key": KEY}},
                "resources": [{"name": "orders", "primary_key": "id", "write_disposition": "merge", "endpoint": {
                    "path": "orders", "params": {"limit": 250, "exported": "true", "user_data": "true"},
                    "paginator": {"type": "page_number", "base_page": 1, "page_param": "page", "total_path": None,
                                  "stop_after_empty_page": True}}}]}
    if api == "eguma":  # no paging: one answer holds every order modified since the start value
        return {"client": {"base_url": f"{root}/v1/"},
                "resources": [{"name": "orders", "primary_key": "id", "write_disposition": "merge", "endpoint": {
                    "path": "vouchers/orders.json", "params": {"apikey": KEY},
                    "paginator": "single_page",
                    "incremental": {"start_param": "updated_at_after", "cursor_path": "updated_at",
                                    "initial_value": EGUMA_START.strftime("%Y-%m-%dT%H:%M:%S")}}}]}
    if api == "firespring":  # numbered pages, total in meta.pagination.total_pages
        return {"client": {"base_url": f"{root}/", "headers": {"Firespring-Api-Version": "1"},
                           "auth": {"type": "http_basic", "username": KEY, "password": ""}},
                "resources": [{"name": "orders", "primary_key": "id", "write_disposition": "merge", "endpoint": {
                    "path": f"websites/{FIRESPRING_WEBSITE}/orders", "data_selector": "data",
                    "params": dict(FIRESPRING_QUERY),  # a copy: dlt may add to it
                    "paginator": {"type": "page_number", "base_page": 1, "page_param": "page",
                                  "total_path": "meta.pagination.total_pages"}}}]}
    if api != "prio":
        raise KeyError(f"benchmarks/targets.py: no dlt configuration for the API '{api}'")
    return {"client": {"base_url": f"{root}{PRIO_PREFIX}/",
                       "auth": {"type": "oauth2_client_credentials", "client_id": PRIO_CLIENT, "client_secret": KEY,
                                "access_token_url": f"{root}{PRIO_PREFIX}/oauth2/token"}},
            "resources": [{"name": "orders", "primary_key": "order_reference", "write_disposition": "merge",
                           "endpoint": {
                               "path": "orders", "data_selector": "data.items",
                               "params": {"order_created_from": FAR_PAST, "order_created_to": FAR_FUTURE,
                                          "order_sort_by": "ORDER_CREATED", "order_sort_order": "ASC",
                                          "items_per_page": 100},
                               "paginator": {"type": "page_number", "base_page": 1, "page_param": "page",
                                             "total_path": "data.total_pages"}}}]}


# --- what a comparison checks: id, time of the latest change, total, number of lines ---------------------------
@dataclass(frozen=True)
class Fields:
    id: Callable[[Record], str]
    fingerprint: Callable[[Record], tuple[Any, Any, int]]


def _dig(record: Record, *path: str) -> Any:
    value: Any = record
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


FIELDS = {
    "frontcore": Fields(lambda r: str(r["id"]), lambda r: (
        r.get("updated_at") or r.get("created_at"),
        _dig(r, "calculated_totals", "total_amount_incl_discounts_and_vat"), len(r.get("lines") or []))),
    "eguma": Fields(lambda r: str(r["id"]), lambda r: (
        r.get("updated_at"), r.get("grand_total_in_cents"), len(r.get("order_lines") or []))),
    "firespring": Fields(lambda r: str(r["id"]), lambda r: (
        r.get("status"), _dig(r, "pricing", "total"), len(r.get("items") or []))),
    "prio": Fields(lambda r: str(r["order_reference"]), lambda r: (
        r.get("order_modified"), _dig(r, "order_pricing", "price_total"), len(r.get("order_bookings") or []))),
}

LISTINGS: dict[str, Callable[[str], Iterator[list[Record]]]] = {
    "frontcore": list_frontcore, "eguma": list_eguma, "firespring": list_firespring, "prio": list_prio}


def missing_parts(api: str, *tables: tuple[str, Mapping[str, Any]]) -> list[str]:
    """What the benchmarks still lack for ``api`` (a new API in the registry): the names of this file's per-API
    tables (and of ``tables``, which other files pass) that have no entry for it."""
    own: tuple[tuple[str, Mapping[str, Any]], ...] = (
        ("WAITS_BEFORE_DATA", WAITS_BEFORE_DATA), ("FIELDS", FIELDS), ("LISTINGS", LISTINGS))
    lacking = [name for name, table in (*own, *tables) if api not in table]
    for name, build in (("ordersync_source", ordersync_source), ("dlt_resource", dlt_resource)):
        try:
            build(api, "http://127.0.0.1:1")
        except KeyError:
            lacking.append(name)
    return lacking
