"""The Frontcore sandbox answers as the vendor's documentation says (expectations written from the docs)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.apis.frontcore.conftest import KEY
from tests.support import Running

OSLO = ZoneInfo("Europe/Oslo")
FIXTURES = Path(__file__).parent / "fixtures"


def get(fc: Running, path: str, params: Any = None, key: str | None = KEY) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    return httpx.get(f"{fc.url}/v2/{path}", params=params, headers=headers, timeout=30)


def everything(fc: Running, path: str = "orders", **params: Any) -> list[dict[str, Any]]:
    """Every record, page by page, stopping at the first short page as the documentation says."""
    records: list[dict[str, Any]] = []
    page = 1
    while True:
        batch = get(fc, path, {**params, "limit": 250, "page": page}).json()
        records += batch
        if len(batch) < 250:
            return records
        page += 1


def oslo(value: str) -> datetime:
    """A documented filter value (Oslo local time, date or date and time) as an instant."""
    return datetime.fromisoformat(value if " " in value else value + " 00:00:00").replace(tzinfo=OSLO)


@pytest.fixture(scope="module")
def all_orders(fc: Running) -> list[dict[str, Any]]:
    return everything(fc, exported="true", user_data="true")


def test_wrong_or_missing_key_gets_the_vendors_error(fc: Running) -> None:
    for key in ("nope", None):
        response = get(fc, "orders", key=key)
        assert response.status_code == 401
        assert response.json() == {"error": "Wrong API Key"}
    assert get(fc, "customers", key="nope").json() == {"error": "Wrong API Key"}


def test_limit_defaults_to_75_and_refuses_more_than_250(fc: Running) -> None:
    assert len(get(fc, "orders", {"exported": "true"}).json()) == 75
    assert len(get(fc, "orders", {"exported": "true", "limit": 250}).json()) == 250
    too_many = get(fc, "orders", {"limit": 251})
    assert too_many.status_code == 400
    assert "limit" in too_many.json()["error"]
    assert get(fc, "orders", {"limit": "ten"}).status_code == 400


def test_pages_are_disjoint_and_ordered_by_descending_id(fc: Running, all_orders: list[dict[str, Any]]) -> None:
    ids = [o["id"] for o in all_orders]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == len(set(ids)) == 600
    page2 = get(fc, "orders", {"exported": "true", "limit": 50, "page": 2}).json()
    assert [o["id"] for o in page2] == ids[50:100]
    assert get(fc, "orders", {"exported": "true", "limit": 250, "page": 99}).json() == []


def test_since_id_keeps_only_greater_ids(fc: Running, all_orders: list[dict[str, Any]]) -> None:
    pivot = sorted(o["id"] for o in all_orders)[400]
    got = {o["id"] for o in everything(fc, since_id=pivot, exported="true")}
    assert got == {o["id"] for o in all_orders if o["id"] > pivot}


@pytest.mark.parametrize("value", ["2025-03-01", "2025-03-01 13:45:00", "2026-03-29 02:30:00"])
def test_created_at_min_and_max_use_oslo_time_in_both_formats(
    fc: Running, all_orders: list[dict[str, Any]], value: str
) -> None:
    bound = oslo(value)
    newer = {o["id"] for o in everything(fc, created_at_min=value, exported="true")}
    older = {o["id"] for o in everything(fc, created_at_max=value, exported="true")}
    assert newer == {o["id"] for o in all_orders if datetime.fromisoformat(o["created_at"]) >= bound}
    assert older == {o["id"] for o in all_orders if datetime.fromisoformat(o["created_at"]) < bound}
    assert newer and older


def test_updated_at_filters_never_return_orders_that_were_never_updated(
    fc: Running, all_orders: list[dict[str, Any]]
) -> None:
    never_updated = {o["id"] for o in all_orders if o["updated_at"] is None}
    assert never_updated, "the sandbox must have new orders with updated_at null, as in the sample"
    got = {o["id"] for o in everything(fc, updated_at_min="2000-01-01", exported="true")}
    assert got == {o["id"] for o in all_orders if o["updated_at"] is not None}
    assert not got & never_updated


def test_exported_defaults_to_false_which_hides_exported_orders(fc: Running, all_orders: list[dict[str, Any]]) -> None:
    exported = {o["id"] for o in all_orders if o["exported_at"] is not None}
    assert exported
    default = {o["id"] for o in everything(fc)}
    assert default == {o["id"] for o in all_orders} - exported
    assert {o["id"] for o in everything(fc, exported="false")} == default


def test_exported_at_window(fc: Running, all_orders: list[dict[str, Any]]) -> None:
    lo, hi = "2024-06-01", "2025-06-01 12:00:00"
    got = {o["id"] for o in everything(fc, exported="true", exported_at_min=lo, exported_at_max=hi)}
    expected = {o["id"] for o in all_orders if o["exported_at"]
                and oslo(lo) <= datetime.fromisoformat(o["exported_at"]) < oslo(hi)}
    assert got == expected and expected


def test_malformed_dates_are_refused(fc: Running) -> None:
    for value in ("01.02.2024", "2024-13-01", "2024-01-01T10:00:00"):
        response = get(fc, "orders", {"created_at_min": value})
        assert response.status_code == 400
        assert "created_at_min" in response.json()["error"]


def test_course_id_finds_orders_with_at_least_one_line_for_the_course(
    fc: Running, all_orders: list[dict[str, Any]]
) -> None:
    def courses(order: dict[str, Any]) -> set[int]:
        return {r["course_id"] for line in order["lines"] for r in line["database_relations"]}

    multi = next(o for o in all_orders if len(courses(o)) > 1)
    for course in courses(multi):
        got = {o["id"] for o in everything(fc, course_id=course, exported="true")}
        assert got == {o["id"] for o in all_orders if course in courses(o)}
        assert multi["id"] in got


def test_user_data_adds_users_to_each_line(fc: Running) -> None:
    without = get(fc, "orders", {"limit": 5}).json()
    with_users = get(fc, "orders", {"limit": 5, "user_data": "true"}).json()
    assert all("users" not in line for o in without for line in o["lines"])
    assert all(line["users"] and line["users"][0]["firstname"] for o in with_users for line in o["lines"])


def test_each_include_path_adds_what_it_names(fc: Running) -> None:
    plain = get(fc, "orders", {"limit": 20, "exported": "true"}).json()
    assert all("campaign" not in o for o in plain)
    assert all("course" not in r and "participant" not in r
               for o in plain for line in o["lines"] for r in line["database_relations"])
    rich = get(fc, "orders", [("limit", 20), ("exported", "true"), ("include[]", "campaign"),
                              ("include[]", "lines.database_relations.course"),
                              ("include[]", "lines.database_relations.participants")]).json()
    for order in rich:
        assert "campaign" in order
        assert (order["campaign"] is None) == (order["idCampaign"] is None)
        for relation in (r for line in order["lines"] for r in line["database_relations"]):
            assert relation["course"]["id"] == relation["course_id"] and relation["course"]["title"]
            assert relation["participant"]["id"] == relation["participant_id"]
    unknown = get(fc, "orders", {"include[]": "lines.users"})
    assert unknown.status_code == 400 and "lines.users" in unknown.json()["error"]


def test_records_have_exactly_the_fields_and_types_of_the_documentation_sample(fc: Running) -> None:
    sample = json.loads((FIXTURES / "orders_sample.json").read_text())[0]
    order = get(fc, "orders", {"limit": 1, "user_data": "true", "exported": "true"}).json()[0]

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shape(value[0])] if value else []
        return type(value).__name__ if value is not None else None

    assert list(order) == list(sample)
    assert list(order["lines"][0]) == list(sample["lines"][0])
    assert list(order["first_user"]) == list(sample["first_user"])
    assert list(order["lines"][0]["users"][0]) == list(sample["lines"][0]["users"][0])
    assert list(order["lines"][0]["product"]) == list(sample["lines"][0]["product"])
    assert order["lines"][0]["currency"] == {"id": "1", "title": "NOK", "long_title": "Norwegian kroner"}
    assert datetime.fromisoformat(order["created_at"]).utcoffset() in (
        datetime.fromisoformat("2020-01-01T00:00:00+01:00").utcoffset(),
        datetime.fromisoformat("2020-07-01T00:00:00+02:00").utcoffset(),
    )
    if order["customer"] is not None:
        assert list(order["customer"]) == list(sample["customer"])


def test_names_are_norwegian(all_orders: list[dict[str, Any]]) -> None:
    text = json.dumps(all_orders, ensure_ascii=False)
    assert any(letter in text for letter in "åøæÅØÆ")


def test_customers_paging_filters_and_employees(fc: Running) -> None:
    customers = everything(fc, "customers")
    assert len(customers) == len({c["id"] for c in customers}) == 150
    ids = [c["id"] for c in customers]
    assert ids != sorted(ids) and ids != sorted(ids, reverse=True), "the vendor's customer list is not sorted"
    assert all(c["employees"] == [] for c in customers if c["type"] == "Private")
    assert all("employees" not in c for c in customers if c["type"] == "Company")
    with_employees = everything(fc, "customers", **{"include[]": "employees"})
    assert all(isinstance(c["employees"], list) for c in with_employees)
    pivot = sorted(ids)[100]
    assert {c["id"] for c in everything(fc, "customers", since_id=pivot)} == {i for i in ids if i > pivot}
    bound = "2025-01-01"
    assert {c["id"] for c in everything(fc, "customers", updated_at_min=bound)} == {
        c["id"] for c in customers if datetime.fromisoformat(c["updated_at"]) >= oslo(bound)}
    sample = json.loads((FIXTURES / "customers_sample.json").read_text())
    private = next(c for c in customers if c["type"] == "Private")
    assert list(private) == list(sample[0])


def test_single_order_and_unknown_order(fc: Running, all_orders: list[dict[str, Any]]) -> None:
    one = get(fc, f"orders/{all_orders[3]['id']}", {"user_data": "true"})
    assert one.status_code == 200 and one.json() == all_orders[3]
    missing = get(fc, "orders/1")
    assert missing.status_code == 404 and "error" in missing.json()


def test_control_endpoints_create_new_orders_without_updated_at_and_update_others(fc: Running) -> None:
    fc.control("POST", "clock", {"now": "2026-06-20T10:00:00+00:00"})
    try:
        created = fc.control("POST", "orders", {"is_paid": False})
        assert created["updated_at"] is None and created["created_at"].startswith("2026-06-20T12:00:00+02:00")
        fetched = get(fc, f"orders/{created['id']}").json()
        assert fetched["id"] == created["id"] and fetched["updated_at"] is None
        updated = fc.control("PATCH", f"orders/{created['id']}", {"is_paid": True})
        assert updated["is_paid"] is True and updated["updated_at"] == "2026-06-20T12:00:00+02:00"
        assert httpx.patch(f"{fc.url}/_sandbox/orders/1", json={}).status_code == 404
    finally:
        fc.control("POST", "clock", {"now": None})


def test_openapi_describes_every_documented_parameter(fc: Running) -> None:
    doc = httpx.get(f"{fc.url}/openapi.json").json()
    names = {p["name"] for p in doc["paths"]["/v2/orders"]["get"]["parameters"]}
    assert names >= {"course_id", "limit", "page", "since_id", "created_at_min", "created_at_max", "updated_at_min",
                     "updated_at_max", "exported_at_min", "exported_at_max", "user_data", "exported", "include[]"}
    assert doc["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert doc["security"] == [{"apiKey": []}] and doc["servers"][0]["url"] == fc.url
    assert "/v2/customers" in doc["paths"]


def test_same_seed_same_data_other_seed_other_data() -> None:
    from tests.support import running

    with running("frontcore", orders=50, seed=9) as a, running("frontcore", orders=50, seed=9) as b, \
            running("frontcore", orders=50, seed=10) as c:
        def first(s: Running) -> Any:
            return httpx.get(f"{s.url}/v2/orders", params={"exported": "true"},
                             headers={"X-API-Key": "sandbox-key"}).json()
        assert first(a) == first(b)
        assert first(a) != first(c)


def test_pre_rendered_pages_equal_rendered_ones_and_follow_customer_changes() -> None:
    """The default list view is served from stored bytes: it must be exactly what rendering would give."""
    from tests.sandbox.inprocess import InProcess, auth

    fc = InProcess("frontcore", orders=200, rate_limit=False)
    sandbox: Any = fc.sandbox
    served = fc.get("/v2/orders", params={"limit": 250, "exported": "true"}, **auth(fc)).json()
    rendered = sandbox.render_orders(sandbox.store.find("orders", [], [], "id DESC"), False, set())
    assert served == rendered and len(served) == 200
    order = next(o for o in served if o["customer"])
    fc.request("PATCH", f"/_sandbox/customers/{order['customer']['id']}", json={"title": "Nytt Navn AS"})
    again = fc.get("/v2/orders", params={"limit": 250, "exported": "true"}, **auth(fc)).json()
    assert next(o for o in again if o["id"] == order["id"])["customer"]["title"] == "Nytt Navn AS"
