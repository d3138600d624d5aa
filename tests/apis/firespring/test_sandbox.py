"""The sandbox against the documentation: auth, errors, envelope, every parameter and include, amounts.

Expectations are computed here from the documented rule over records fetched unfiltered, never by calling the
sandbox's own filter code.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import pytest

from tests.apis.firespring.conftest import ALL_INCLUDES, KEY, api, fetch_all
from tests.support import Running

STATUSES = ("pending_approval", "new", "denied", "processing", "canceled", "backordered", "shipped", "completed")


@pytest.fixture(scope="module")
def everything(shared: Running) -> list[dict[str, Any]]:
    return fetch_all(shared)


def ids(body: dict[str, Any]) -> list[int]:
    return [r["id"] for r in body["data"]]


def all_pages(r: Running, **params: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    page = 1
    while True:
        body = api(r, count=100, page=page, **params).json()
        records += body["data"]
        if page >= body["meta"]["pagination"]["total_pages"]:
            return records
        page += 1


def created(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["date_created"])


# --- auth, version, errors ------------------------------------------------------------------------------
def test_basic_auth_with_the_key_as_user_name(shared: Running) -> None:
    assert api(shared).status_code == 200
    for key in (None, "wrong-key"):
        answer = api(shared, key=key)
        assert answer.status_code == 401
        error = answer.json()["errors"][0]
        assert set(error) == {"code", "source", "detail"}


def test_api_version_header(shared: Running) -> None:
    for version in ("1", "2"):
        assert api(shared, headers={"Firespring-Api-Version": version}).status_code == 200
    assert api(shared).status_code == 200  # missing: version 1
    answer = api(shared, headers={"Firespring-Api-Version": "3"})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["source"] == "Firespring-Api-Version"


@pytest.mark.parametrize(("param", "value"), [
    ("count", "0"), ("count", "101"), ("count", "ten"), ("page", "0"), ("date_start", "2024/01/01"),
    ("date_start", "2024-02-30"), ("date_end", "yesterday"), ("direction", "up"), ("sort", "id"),
    ("status", "open"), ("includes", "user,customer"),
])
def test_invalid_parameter_is_a_422_naming_it(shared: Running, param: str, value: str) -> None:
    answer = api(shared, "/websites/4/orders", KEY, None, **{param: value})
    assert answer.status_code == 422
    error = answer.json()["errors"][0]
    assert error["source"] == param
    assert error["code"] and error["detail"]


def test_unknown_website_and_order_are_404(shared: Running, everything: list[dict[str, Any]]) -> None:
    assert api(shared, "/websites/5/orders").status_code == 404
    assert api(shared, "/websites/4/orders/999999999").status_code == 404
    other = api(shared, "/websites/19/orders", count=1).json()["data"][0]
    assert api(shared, f"/websites/4/orders/{other['id']}").status_code == 404
    one = everything[0]
    answer = api(shared, f"/websites/4/orders/{one['id']}", includes=ALL_INCLUDES)
    assert answer.status_code == 200
    assert answer.json() == one


def test_websites_hold_different_orders(shared: Running, everything: list[dict[str, Any]]) -> None:
    others = fetch_all(shared, 19) + fetch_all(shared, 27)
    assert others and everything
    assert not {r["id"] for r in everything} & {r["id"] for r in others}
    assert len(everything) + len(others) == 400


# --- envelope and paging --------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 7, 33, 100])
def test_pagination_envelope(shared: Running, everything: list[dict[str, Any]], count: int) -> None:
    total = len(everything)
    pages = math.ceil(total / count)
    seen: list[int] = []
    for page in sorted({1, 2, pages - 1, pages}) if count == 1 else range(1, pages + 1):
        body = api(shared, count=count, page=page, direction="asc").json()
        assert body["object"] == "list"
        assert body["meta"]["pagination"] == {"total": total, "count": len(body["data"]), "per_page": count,
                                              "current_page": page, "total_pages": pages}
        expected = min(count, total - (page - 1) * count)
        assert len(body["data"]) == expected
        assert ids(body) == [r["id"] for r in everything[(page - 1) * count:(page - 1) * count + expected]]
        seen += ids(body)
    if count != 1:
        assert sorted(seen) == sorted(r["id"] for r in everything)
    beyond = api(shared, count=count, page=pages + 1).json()
    assert beyond["data"] == [] and beyond["meta"]["pagination"]["count"] == 0


def test_count_defaults_to_100_and_page_to_1(shared: Running, everything: list[dict[str, Any]]) -> None:
    body = api(shared).json()
    assert body["meta"]["pagination"]["per_page"] == 100 and body["meta"]["pagination"]["current_page"] == 1
    assert len(body["data"]) == min(100, len(everything))


# --- sort, direction ------------------------------------------------------------------------------------
SORT_KEYS = {
    "date_created": lambda r: created(r),
    "message.message_tracking_number": lambda r: r["message"]["message_tracking_number"],
    "user.username": lambda r: (r["user"] or {}).get("username") or "",
}


@pytest.mark.parametrize("sort", list(SORT_KEYS))
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sort_and_direction(shared: Running, everything: list[dict[str, Any]], sort: str, direction: str) -> None:
    key = SORT_KEYS[sort]
    expected = sorted(everything, key=lambda r: (key(r), r["id"]), reverse=direction == "desc")
    got = all_pages(shared, sort=sort, direction=direction, includes="message,user")
    assert [r["id"] for r in got] == [r["id"] for r in expected]


def test_default_order_is_date_created_descending(shared: Running, everything: list[dict[str, Any]]) -> None:
    expected = sorted(everything, key=lambda r: (created(r), r["id"]), reverse=True)
    assert [r["id"] for r in all_pages(shared)] == [r["id"] for r in expected]


# --- filters --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", STATUSES)
def test_status_filter(shared: Running, everything: list[dict[str, Any]], status: str) -> None:
    expected = {r["id"] for r in everything if r["status"] == status}
    got = all_pages(shared, status=status)
    assert {r["id"] for r in got} == expected
    assert all(r["status"] == status for r in got)


def test_search_matches_tracking_number_or_user_name(shared: Running, everything: list[dict[str, Any]]) -> None:
    with_user = next(r for r in everything if r["user"])
    terms = [with_user["user"]["username"][1:5].upper(), everything[3]["message"]["message_tracking_number"][-4:],
             everything[5]["message"]["message_tracking_number"][:6]]
    for term in terms:
        expected = {r["id"] for r in everything
                    if term.lower() in r["message"]["message_tracking_number"].lower()
                    or term.lower() in ((r["user"] or {}).get("username") or "").lower()}
        assert expected
        assert {r["id"] for r in all_pages(shared, search=term)} == expected
    assert all_pages(shared, search="no-such-thing-%") == []


def test_date_start_and_date_end(shared: Running, everything: list[dict[str, Any]]) -> None:
    """date_start: created at or after the day's start (UTC); date_end: created before the day's start."""
    days = sorted({created(r).astimezone(UTC).date() for r in everything})
    start, end = days[len(days) // 4], days[len(days) // 2]
    for params, rule in (
        ({"date_start": start.isoformat()}, lambda d: d >= start),
        ({"date_end": end.isoformat()}, lambda d: d < end),
        ({"date_start": start.isoformat(), "date_end": end.isoformat()}, lambda d: start <= d < end),
        ({"date_start": end.isoformat(), "date_end": start.isoformat()}, lambda d: False),
    ):
        expected = {r["id"] for r in everything if rule(created(r).astimezone(UTC).date())}
        assert {r["id"] for r in all_pages(shared, **params)} == expected
    assert all_pages(shared, date_start=date(2099, 1, 1).isoformat()) == []


# --- includes -------------------------------------------------------------------------------------------
def test_without_includes_nested_objects_are_ids(shared: Running, everything: list[dict[str, Any]]) -> None:
    bare = {r["id"]: r for r in all_pages(shared, direction="asc")}
    for full in everything:
        record = bare[full["id"]]
        assert record["message"] == full["message"]["id"]
        assert record["user"] == (full["user"]["id"] if full["user"] else None)
        assert record["portal"] == (full["portal"]["id"] if full["portal"] else 0)
        for absent in ("items", "payment_transactions", "billing_address", "shipments", "notes",
                       "additional_information"):
            assert absent not in record
        for same in ("amount_paid", "content_catalog", "currency", "date_created", "is_pay_later", "order_type",
                     "pricing", "shipping_tax_percentage", "status"):
            assert record[same] == full[same]
        if full["promo_code"]:
            inner = record["promo_code"]["promo_code"]
            assert set(inner) == {"object", "id", "promo_code"}
            assert inner["object"] == "promo_code"


@pytest.mark.parametrize("include", ALL_INCLUDES.split(","))
def test_each_include_expands_what_it_names(shared: Running, include: str) -> None:
    records = api(shared, count=100, includes=include).json()["data"]
    top = include.split(".")[0]
    for record in records:
        if top in ("message", "user", "portal"):
            value = record[top]
            assert value is None or isinstance(value, dict)
            if top == "message":
                assert value is not None
                assert value["object"] == "message" and value["message_tracking_number"]
            if top == "user" and value:
                assert value["object"] == "website_user" and set(value) >= {"id", "username",
                                                                            "third_party_identifier"}
        elif top == "promo_code":
            if record["promo_code"]:
                assert "description" in record["promo_code"]["promo_code"]
        elif top == "billing_address":
            assert record["billing_address"]["object"] == "order_billing_address"
        else:
            assert isinstance(record[top], list)
        if top != "items":
            assert "items" not in record
        if include == "items":
            assert all("attributes" not in i and "print_ready_files" not in i and isinstance(i["portal"], int)
                       for i in record["items"])
        if include == "items.attributes":
            assert all(isinstance(i["attributes"], list) and "print_ready_files" not in i for i in record["items"])
        if include == "items.portal":
            assert all(i["portal"] is None or i["portal"]["object"] == "portal" for i in record["items"])
        if include == "items.print_ready_files":
            assert all(isinstance(i["print_ready_files"], list) for i in record["items"])
        if top == "shipments":
            field = include.split(".")[1] if "." in include else None
            for shipment in record["shipments"]:
                for name in ("shipping_address", "shipping_carrier", "shipping_method"):
                    assert isinstance(shipment[name], dict if name == field else int)
    assert any(r[top] for r in records) or top in ("notes",)


def test_sample_request_shape(shared: Running) -> None:
    """The documentation's sample: count=3, page=1, includes=user; keys as in the sample."""
    body = api(shared, count=3, page=1, includes="user", headers={"Firespring-Api-Version": "1"}).json()
    assert len(body["data"]) == 3
    assert list(body["data"][0]) == ["object", "id", "amount_paid", "content_catalog", "currency", "date_created",
                                     "is_pay_later", "message", "order_type", "portal", "pricing", "promo_code",
                                     "shipping_tax_percentage", "status", "user"]
    assert list(body["meta"]["pagination"]) == ["total", "count", "per_page", "current_page", "total_pages"]


# --- amounts --------------------------------------------------------------------------------------------
def test_amounts_add_up(everything: list[dict[str, Any]]) -> None:
    assert any(r["promo_code"] for r in everything) and any(r["amount_paid"] == 0 for r in everything)
    for record in everything:
        p = record["pricing"]
        assert p["subtotal"] - p["subtotal_discount"] + p["tax"] + p["shipping"] - p["shipping_discount"] == p["total"]
        assert sum(i["total"] for i in record["items"]) == p["subtotal"]
        for item in record["items"]:
            assert item["price"] * item["quantity"] == item["total"]
        assert sum(t["amount"] for t in record["payment_transactions"]) == record["amount_paid"]
        assert record["amount_paid"] in (0, p["total"])
        if record["promo_code"]:
            assert record["promo_code"]["subtotal_discount"] == p["subtotal_discount"]
            assert record["promo_code"]["shipping_discount"] == p["shipping_discount"]
        assert record["currency"] == "usd"
        assert all(isinstance(v, int) for k, v in p.items() if k != "object")
