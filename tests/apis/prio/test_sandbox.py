"""The sandbox side: every documented filter, paging, sorting, dates, the 3-month default, 304, OAuth2.

Expected sets are computed here from the documentation's rules over orders fetched unfiltered (or created
through the control endpoints), never by the sandbox's own filter code.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.apis.prio.helpers import BASE, WIDE, api_get, fetch_all, refs, token, when
from tests.support import ANCHOR, Running, running

Order = dict[str, Any]


@pytest.fixture(scope="module")
def r() -> Iterator[Running]:
    with running("prio", orders=300, seed=11) as server:
        yield server


@pytest.fixture(scope="module")
def everything(r: Running) -> list[Order]:
    return fetch_all(r)


def bookings(o: Order) -> list[Order]:
    return o["order_bookings"]


def contacts(o: Order) -> list[Order]:
    return o["order_contacts"]


def test_envelope_and_record_shape(r: Running, everything: list[Order]) -> None:
    answer = api_get(r, {**WIDE, "items_per_page": 5})
    body = answer.json()
    assert body["api_version"] == "3.4.0"
    assert set(body["data"]) == {"current_item_count", "items", "items_per_page", "kind", "page_index",
                                 "start_index", "total_items", "total_pages"}
    assert body["data"]["total_items"] == len(everything) == 300
    assert answer.headers["last-modified"]
    order = body["data"]["items"][0]
    assert {"order_reference", "order_status", "order_version", "order_created", "order_modified", "order_pricing",
            "order_contacts", "order_payments", "order_promocodes", "order_bookings"} <= set(order)
    assert {"booking_reference", "booking_external_reference", "booking_travel_date", "product_id", "product_title",
            "product_type_details", "booking_pricing"} <= set(bookings(order)[0])
    assert {"product_type_id", "product_type", "product_type_count", "product_type_price"} <= set(
        bookings(order)[0]["product_type_details"][0])
    assert {"contact_uid", "contact_email", "contact_name_first", "contact_name_last"} <= set(contacts(order)[0])
    assert re.fullmatch(r"\d+\.\d{2}", order["order_pricing"]["price_total"])
    assert {o["order_status"] for o in everything} <= {"ORDER_CONFIRMED", "ORDER_PENDING", "ORDER_CANCELLED",
                                                       "ORDER_PARTIALLY_CANCELLED", "ORDER_BLOCKED"}
    assert len(refs(everything)) == 300  # only the latest revision of each order


def test_default_is_the_last_three_months(r: Running, everything: list[Order]) -> None:
    r.control("POST", "clock", {"now": ANCHOR.isoformat()})
    try:
        got = refs(fetch_all(r, order_created_from=None, order_created_to=None))
    finally:
        r.control("POST", "clock", {})
    since = ANCHOR.replace(month=ANCHOR.month - 3)
    expected = {o["order_reference"] for o in everything if when(o["order_created"]) >= since}
    assert got == expected and 0 < len(expected) < len(everything)


@pytest.mark.parametrize("name", ["order_created_from", "order_created_to", "order_modified"])
def test_z_suffix_and_zoneless_dates_are_refused(r: Running, name: str) -> None:
    for value in ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "2026-01-01"):
        answer = api_get(r, {**WIDE, name: value})
        assert answer.status_code == 400, value
        body = answer.json()
        assert body["error"] == "INVALID_REQUEST" and body["errors"] and name in body["error_description"]
    assert "+00:00" in api_get(r, {**WIDE, name: "2026-01-01T00:00:00Z"}).json()["error_description"]
    assert api_get(r, {**WIDE, name: "2026-01-01T00:00:00+02:00"}).status_code == 200


def pick(everything: list[Order], get: Callable[[Order], Any]) -> Any:
    """A value that some but (where possible) not all orders have."""
    values = [v for o in everything for v in get(o) if v is not None]
    return sorted(values, key=str)[len(values) // 2]


FILTERS: dict[str, tuple[Callable[[Order], list[Any]], Callable[[Order, Any], bool]]] = {
    "reseller_id": (lambda o: [int(o["order_reseller_id"])], lambda o, v: int(o["order_reseller_id"]) == v),
    "distributor_id": (lambda o: [int(o["order_distributor_id"])], lambda o, v: int(o["order_distributor_id"]) == v),
    "market_admin_id": (lambda o: [int(o["order_market_admin_id"])],
                        lambda o, v: int(o["order_market_admin_id"]) == v),
    "supplier_id": (lambda o: [int(b["product_supplier_id"]) for b in bookings(o)],
                    lambda o, v: any(int(b["product_supplier_id"]) == v for b in bookings(o))),
    "order_reference": (lambda o: [o["order_reference"]], lambda o, v: o["order_reference"] == v),
    "order_external_reference": (lambda o: [o["order_external_reference"]],
                                 lambda o, v: o["order_external_reference"] == v),
    "order_status": (lambda o: [o["order_status"]], lambda o, v: o["order_status"] == v),
    "order_contact_uid": (lambda o: [c["contact_uid"] for c in contacts(o)],
                          lambda o, v: any(c["contact_uid"] == v for c in contacts(o))),
    "order_contact_name": (lambda o: [c["contact_name_last"].upper() for c in contacts(o)],
                           lambda o, v: any(v.lower() in (c["contact_name_first"].lower(),
                                                          c["contact_name_last"].lower(),
                                                          f"{c['contact_name_first']} {c['contact_name_last']}".lower())
                                            for c in contacts(o))),
    "order_contact_email": (lambda o: [c["contact_email"].upper() for c in contacts(o)],
                            lambda o, v: any(c["contact_email"].lower() == v.lower() for c in contacts(o))),
    "booking_reference": (lambda o: [b["booking_reference"] for b in bookings(o)],
                          lambda o, v: any(b["booking_reference"] == v for b in bookings(o))),
    "booking_external_reference": (lambda o: [b["booking_external_reference"] for b in bookings(o)],
                                   lambda o, v: any(b["booking_external_reference"] == v for b in bookings(o))),
    "product_id": (lambda o: [b["product_id"] for b in bookings(o)],
                   lambda o, v: any(b["product_id"] == v for b in bookings(o))),
    "product_type_code": (lambda o: [t["product_type_code"] for b in bookings(o) for t in b["product_type_details"]],
                          lambda o, v: any(t["product_type_code"] == v for b in bookings(o)
                                           for t in b["product_type_details"])),
    "product_availability_id": (lambda o: [b["product_availability_id"] for b in bookings(o)],
                                lambda o, v: any(b["product_availability_id"] == v for b in bookings(o))),
    "product_availability_capacity_id": (lambda o: [b["product_availability_capacity_id"] for b in bookings(o)],
                                         lambda o, v: any(b["product_availability_capacity_id"] == v
                                                          for b in bookings(o))),
    "order_created_email": (lambda o: [o["order_created_email"].upper()],
                            lambda o, v: o["order_created_email"].lower() == v.lower()),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter(r: Running, everything: list[Order], name: str) -> None:
    values, rule = FILTERS[name]
    value = pick(everything, values)
    expected = {o["order_reference"] for o in everything if rule(o, value)}
    assert expected
    assert refs(fetch_all(r, **{name: value})) == expected


def test_full_name_matches_contact_name(r: Running, everything: list[Order]) -> None:
    contact = contacts(everything[7])[0]
    full = f"{contact['contact_name_first']} {contact['contact_name_last']}"
    assert everything[7]["order_reference"] in refs(fetch_all(r, order_contact_name=full.lower()))


def test_creation_range_is_inclusive(r: Running, everything: list[Order]) -> None:
    ordered = sorted(everything, key=lambda o: when(o["order_created"]))
    low, high = ordered[100]["order_created"], ordered[200]["order_created"]
    got = refs(fetch_all(r, order_created_from=low.replace("Z", "+00:00"),
                         order_created_to=high.replace("Z", "+00:00")))
    expected = {o["order_reference"] for o in everything if when(low) <= when(o["order_created"]) <= when(high)}
    assert got == expected and ordered[100]["order_reference"] in got and ordered[200]["order_reference"] in got


def test_order_modified_is_strictly_after_and_includes_new(r: Running, everything: list[Order]) -> None:
    ordered = sorted(everything, key=lambda o: when(o["order_modified"]))
    mark = ordered[150]["order_modified"]
    got = refs(fetch_all(r, order_modified=mark.replace("Z", "+00:00")))
    expected = {o["order_reference"] for o in everything if when(o["order_modified"]) > when(mark)}
    assert got == expected and ordered[150]["order_reference"] not in got
    assert any(o["order_version"] == 1 for o in everything if o["order_reference"] in got)  # never-updated ones too


def test_filter_bookings_keeps_only_matching_bookings(r: Running, everything: list[Order]) -> None:
    mixed = next(o for o in everything if len({b["product_id"] for b in bookings(o)}) > 1)
    product = bookings(mixed)[0]["product_id"]
    plain = {o["order_reference"]: o for o in fetch_all(r, product_id=product)}
    narrowed = {o["order_reference"]: o for o in fetch_all(r, product_id=product, filter_bookings="true")}
    assert set(plain) == set(narrowed)
    assert any(b["product_id"] != product for b in bookings(plain[mixed["order_reference"]]))
    assert all(b["product_id"] == product for o in narrowed.values() for b in bookings(o))


def test_search_needs_cache_and_matches_words(r: Running, everything: list[Order]) -> None:
    """The cache is on unless turned off (docs/prio.md); search works only with it."""
    refused = api_get(r, {**WIDE, "order_search_query": "museum", "cache": "false"})
    assert refused.status_code == 400 and refused.json()["error"] == "INVALID_REQUEST"
    assert "cache" in refused.json()["error_description"]
    assert api_get(r, {**WIDE, "order_search_query": "museum"}).status_code == 200

    def text(o: Order) -> str:
        words = [o["order_reference"], o["order_external_reference"], o["order_created_email"],
                 *(c[k] for c in contacts(o) for k in ("contact_name_first", "contact_name_last", "contact_email")),
                 *(b[k] for b in bookings(o) for k in ("booking_reference", "booking_external_reference",
                                                         "product_title"))]
        return " ".join(str(w).lower() for w in words if w)

    for query in ("museum", "VAN*museum", "rijks gmail"):
        patterns = [re.compile(re.escape(w.lower()).replace(r"\*", ".*")) for w in query.split()]
        expected = {o["order_reference"] for o in everything if all(p.search(text(o)) for p in patterns)}
        assert expected, query
        assert refs(fetch_all(r, order_search_query=query, cache="true")) == expected, query


def test_sorting(r: Running, everything: list[Order]) -> None:
    by_created = [o["order_reference"] for o in sorted(everything, key=lambda o: (when(o["order_created"]),
                                                                                   o["order_reference"]))]
    assert [o["order_reference"] for o in fetch_all(r)] == by_created[::-1]  # default DESC by ORDER_CREATED
    assert [o["order_reference"] for o in fetch_all(r, order_sort_order="ASC")] == by_created
    by_modified = [o["order_reference"] for o in sorted(everything, key=lambda o: (when(o["order_modified"]),
                                                                                    o["order_reference"]))]
    assert [o["order_reference"] for o in fetch_all(r, order_sort_by="ORDER_MODIFIED", order_sort_order="ASC")] \
        == by_modified
    for bad in ({"order_sort_by": "INVOICE_DATE"}, {"order_sort_order": "UP"}, {"order_status": "CONFIRMED"},
                {"reseller_id": "abc"}, {"items_per_page": "0"}, {"filter_bookings": "maybe"}):
        answer = api_get(r, {**WIDE, **bad})
        assert answer.status_code == 400 and answer.json()["error"] == "INVALID_REQUEST", bad


def test_paging_cap_page_and_start_index(r: Running, everything: list[Order]) -> None:
    ordered = [o["order_reference"] for o in sorted(everything, key=lambda o: (when(o["order_created"]),
                                                                                 o["order_reference"]))]
    tok = token(r)
    default = api_get(r, {**WIDE, "order_sort_order": "ASC"}, tok).json()["data"]
    assert default["items_per_page"] == 10 and default["current_item_count"] == 10 and default["total_pages"] == 30
    capped = api_get(r, {**WIDE, "items_per_page": 500}, tok).json()["data"]
    assert capped["items_per_page"] == 100 and capped["current_item_count"] == 100 and capped["total_pages"] == 3
    page = api_get(r, {**WIDE, "order_sort_order": "ASC", "items_per_page": 10, "page": 3}, tok).json()["data"]
    assert [o["order_reference"] for o in page["items"]] == ordered[20:30]
    assert (page["page_index"], page["start_index"]) == (3, 21)
    indexed = api_get(r, {**WIDE, "order_sort_order": "ASC", "items_per_page": 10, "start_index": 15}, tok).json()
    assert [o["order_reference"] for o in indexed["data"]["items"]] == ordered[14:24]
    assert indexed["data"]["start_index"] == 15
    last = api_get(r, {**WIDE, "items_per_page": 100, "page": 3}, tok).json()["data"]
    assert last["current_item_count"] == 100 and last["page_index"] == 3
    beyond = api_get(r, {**WIDE, "items_per_page": 100, "page": 4}, tok).json()["data"]
    assert beyond["items"] == [] and beyond["total_items"] == 300


def test_if_modified_since(r: Running, everything: list[Order]) -> None:
    tok = token(r)
    params = {**WIDE, "product_id": pick(everything, FILTERS["product_id"][0])}
    first = api_get(r, params, tok)
    latest = max(when(o["order_modified"]) for o in fetch_all(r, **params))
    last_modified = email.utils.parsedate_to_datetime(first.headers["last-modified"])
    assert last_modified == latest.replace(microsecond=0)
    same = api_get(r, params, tok, {"If-Modified-Since": first.headers["last-modified"]})
    assert same.status_code == 304 and same.content == b"" and same.headers["last-modified"]
    earlier = email.utils.format_datetime(last_modified - timedelta(seconds=1), usegmt=True)
    again = api_get(r, params, tok, {"If-Modified-Since": earlier})
    assert again.status_code == 200 and again.json()["data"]["total_items"] == first.json()["data"]["total_items"]


def test_control_updates_make_revisions_and_change_last_modified() -> None:
    with running("prio", orders=20, seed=5) as r:
        r.control("POST", "clock", {"now": "2026-06-20T12:00:00+00:00"})
        tok = token(r)
        before = api_get(r, WIDE, tok)
        target = before.json()["data"]["items"][3]
        changed = r.control("PATCH", f"orders/{target['order_reference']}", {"order_external_reference": "NEW-REF"})
        assert changed["order_version"] == target["order_version"] + 1
        assert when(changed["order_modified"]).isoformat() == "2026-06-20T12:00:00+00:00"
        listed = [o for o in fetch_all(r) if o["order_reference"] == target["order_reference"]]
        assert len(listed) == 1 and listed[0]["order_version"] == changed["order_version"]
        assert listed[0]["order_external_reference"] == "NEW-REF"
        after = api_get(r, WIDE, tok, {"If-Modified-Since": before.headers["last-modified"]})
        assert after.status_code == 200
        r.control("POST", "clock", {"now": "2026-06-20T12:00:05+00:00"})
        cancelled = r.control("PATCH", f"orders/{target['order_reference']}", {"cancel": True})
        assert cancelled["order_status"] == "ORDER_CANCELLED"
        assert cancelled["order_version"] == target["order_version"] + 2
        created = r.control("POST", "orders", {"order_status": "ORDER_PENDING"})
        assert created["order_status"] == "ORDER_PENDING" and created["order_version"] == 1
        assert created["order_reference"] in refs(fetch_all(r, order_status="ORDER_PENDING"))
        assert len(fetch_all(r)) == 21


def test_oauth2_tokens() -> None:
    with running("prio", orders=5, seed=2, extra={"token_ttl": "1"}) as r:
        url = f"{r.url}{BASE}/oauth2/token"
        answer = httpx.post(url, auth=("sandbox-client", "sandbox-key"), json={"grant_type": "client_credentials",
                                                                                "scope": "orders"})
        body = answer.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 1 and body["scope"] == "orders"
        wrong = httpx.post(url, auth=("sandbox-client", "nope"), json={"grant_type": "client_credentials"})
        assert wrong.status_code == 401 and {"error", "error_description", "errors"} <= set(wrong.json())
        grant = httpx.post(url, auth=("sandbox-client", "sandbox-key"), json={"grant_type": "password"})
        assert grant.status_code == 400
        missing = httpx.get(f"{r.url}{BASE}/orders")
        assert missing.status_code == 401 and missing.json()["error_description"]
        tok = body["access_token"]
        assert api_get(r, WIDE, tok).status_code == 200
        time.sleep(1.1)
        expired = api_get(r, WIDE, tok)
        assert expired.status_code == 401 and "expired" in expired.json()["error_description"]
        fresh = token(r)
        r.control("POST", "revoke")
        revoked = api_get(r, WIDE, fresh)
        assert revoked.status_code == 403 and "revoked" in revoked.json()["error_description"]
        assert httpx.get(f"{r.url}/openapi.json").json()["paths"][f"{BASE}/orders"]["get"]["parameters"]
